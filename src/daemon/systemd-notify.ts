import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

/**
 * sd_notify(3) for Type=notify: READY=1 once the sources are up (or gave up per their startup policy),
 * WATCHDOG=1 from the main loop, STOPPING=1 and RELOADING=1.
 *
 * Node cannot send to a unix datagram socket without a native addon, so this runs `systemd-notify --pid=<ours>`;
 * the unit sets NotifyAccess=all so systemd accepts the message from that child, and systemd-notify waits for
 * systemd to process it (sd_notify_barrier, systemd ≥ 246) so it is attributed to the service before it exits.
 * Outside systemd (no $NOTIFY_SOCKET) every call is a no-op.
 */
export class SystemdNotifier {
  #watchdog: NodeJS.Timeout | undefined;
  readonly #enabled: boolean;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly binary = 'systemd-notify',
  ) {
    this.#enabled = Boolean(env.NOTIFY_SOCKET);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  ready(status: string): void {
    this.#send([`--ready`, `--status=${status}`]);
  }

  status(status: string): void {
    this.#send([`--status=${status}`]);
  }

  stopping(): void {
    this.#send(['STOPPING=1']);
  }

  reloading(): void {
    // CLOCK_MONOTONIC in µs, as systemd compares it with its own (sd_notify(3)); process.hrtime is CLOCK_MONOTONIC on Linux.
    this.#send(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`]);
  }

  /**
   * Pings the watchdog at half of WatchdogSec from the event loop, but only while `alive()` says the main loop is
   * healthy: a wedged gateway stops pinging and systemd restarts it.
   */
  startWatchdog(alive: () => boolean): void {
    const usec = Number(this.env.WATCHDOG_USEC);
    const pidOk = !this.env.WATCHDOG_PID || Number(this.env.WATCHDOG_PID) === process.pid;
    if (!this.#enabled || !Number.isFinite(usec) || usec <= 0 || !pidOk) return;
    const periodMs = Math.max(500, Math.floor(usec / 2000));
    this.#watchdog = setInterval(() => {
      if (alive()) this.#send(['WATCHDOG=1']);
      else this.log.error('watchdog ping withheld: the gateway main loop is not healthy');
    }, periodMs);
    this.#watchdog.unref();
    this.log.info({ periodMs }, 'systemd watchdog enabled');
  }

  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  #send(args: string[]): void {
    if (!this.#enabled) return;
    execFile(this.binary, [`--pid=${process.pid}`, ...args], { timeout: 5_000 }, (err) => {
      if (err) this.log.warn({ err, args }, 'systemd-notify failed');
    });
  }
}
