import { Backoff } from '../../core/backoff.js';
import { monotonicMs } from '../../core/source-clock.js';

/** While the server was healthy this recently, a lost session is retried quickly: it is probably restarting. */
export const RECENTLY_HEALTHY_MS = 5 * 60_000;
/** Largest delay between attempts while the server was recently healthy. */
export const RECENT_MAX_DELAY_MS = 2_000;
/**
 * Connect timeout of the first attempt while the server was recently healthy; it doubles at each attempt that timed
 * out, up to the full timeout (2 × requestTimeoutMs). An attempt that reached a server in the middle of its
 * shutdown or start can hang for the full 30 s otherwise, with the server up and nothing retried.
 */
export const RECENT_CONNECT_TIMEOUT_MS = 4_000;

/**
 * The delay before each reconnect attempt to one OPC UA server: exponential backoff with full jitter, reset by a
 * successful connect, and capped at RECENT_MAX_DELAY_MS while the server was healthy in the last RECENTLY_HEALTHY_MS
 * (it grows to reconnect.maxDelayMs only when the server stays down for minutes).
 *
 * Why: the backoff was reset only after a session had lasted 10 s, so a server restarting twice pushed the next
 * attempt towards a minute (seen: 36 s without an attempt while the server was up, and 6 of 20 restarts over 5 s
 * from the server back to the first value). A PLC restart or a network blip is over in seconds; a gateway that
 * retries every 1–2 s for a few minutes costs the server one refused TCP connection per attempt.
 */
export class ReconnectDelay {
  readonly #long: Backoff;
  readonly #recent: Backoff;
  #healthyAt: number | undefined;
  #timeouts = 0;

  constructor(
    options: { initialDelayMs: number; maxDelayMs: number },
    private readonly now: () => number = monotonicMs,
    random?: () => number,
  ) {
    const common = { initialMs: options.initialDelayMs, ...(random ? { random } : {}) };
    this.#long = new Backoff({ ...common, maxMs: options.maxDelayMs });
    this.#recent = new Backoff({ ...common, maxMs: Math.min(options.maxDelayMs, Math.max(RECENT_MAX_DELAY_MS, options.initialDelayMs)) });
  }

  /** A session was established: the next loss starts from the first delay. */
  connected(): void {
    this.#long.reset();
    this.#recent.reset();
    this.#timeouts = 0;
    this.#healthyAt = this.now();
  }

  /** The last attempt timed out: the next one waits longer for an answer (a slow PLC must still get in). */
  timedOut(): void {
    this.#timeouts++;
  }

  /** How long the next attempt may take to connect, given the full timeout. */
  connectTimeout(fullMs: number): number {
    if (!this.recentlyHealthy) return fullMs;
    return Math.min(fullMs, RECENT_CONNECT_TIMEOUT_MS * 2 ** Math.min(this.#timeouts, 16));
  }

  /** The session was lost: the server was healthy until now. */
  lost(): void {
    this.#healthyAt = this.now();
  }

  /** Delay before the next attempt (counts one failed attempt). */
  next(): number {
    const long = this.#long.next();
    const recent = this.#recent.next();
    return this.recentlyHealthy ? recent : long;
  }

  get recentlyHealthy(): boolean {
    return this.#healthyAt !== undefined && this.now() - this.#healthyAt < RECENTLY_HEALTHY_MS;
  }

  get attempts(): number {
    return this.#long.attempts;
  }
}
