import { monotonicMs } from '../../core/source-clock.js';

/**
 * "Connected but silent": a session whose socket is open but whose subscription sends neither data nor
 * keep-alives (a half-open TCP connection, a server whose publish loop died) looks healthy to every socket-level
 * check. The watchdog fires when nothing was heard for `timeoutMs`, and the source then reconnects.
 */
export class SilenceWatchdog {
  #last: number;
  #timer: NodeJS.Timeout | undefined;
  #fired = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly onSilent: (silentForMs: number) => void,
    private readonly now: () => number = monotonicMs,
  ) {
    this.#last = now();
  }

  /** Starts checking, a few times per timeout. */
  start(): void {
    this.stop();
    this.#last = this.now();
    this.#fired = false;
    const period = Math.max(50, Math.min(1000, Math.floor(this.timeoutMs / 4)));
    this.#timer = setInterval(() => this.check(), period);
    this.#timer.unref();
  }

  /** Something arrived from the server. Hot path: one assignment. */
  touch(): void {
    this.#last = this.now();
  }

  /** Fires at most once per start. */
  check(): void {
    if (this.#fired) return;
    const silent = this.now() - this.#last;
    if (silent >= this.timeoutMs) {
      this.#fired = true;
      this.stop();
      this.onSilent(silent);
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
