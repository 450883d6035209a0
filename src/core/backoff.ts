/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * delay = random(0, min(max, initial * factor^attempt)), never below `minMs`.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** Lower bound so a reconnect storm never spins; default initialMs / 2. */
  minMs?: number;
  random?: () => number;
}

export class Backoff {
  #attempt = 0;
  readonly #factor: number;
  readonly #minMs: number;
  readonly #random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.#factor = options.factor ?? 2;
    this.#minMs = options.minMs ?? options.initialMs / 2;
    this.#random = options.random ?? Math.random;
  }

  /** Delay before the next attempt; each call counts one failed attempt. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * this.#factor ** this.#attempt);
    this.#attempt++;
    return Math.max(this.#minMs, Math.round(this.#random() * ceiling));
  }

  /** Call after a success. */
  reset(): void {
    this.#attempt = 0;
  }

  get attempts(): number {
    return this.#attempt;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
