import type { Logger } from 'pino';

/** Keys remembered at most: keys may carry a device's name (`no-rebirth:<group>/<node>`), which a plant does not bound. */
export const MAX_LOG_KEYS = 1000;
/** Where lines of new keys go while MAX_LOG_KEYS keys are live: one line per interval for all of them. */
const OVERFLOW_KEY = '(other keys)';

/**
 * Logs at most one line per key per interval: a device spamming malformed payloads must not flood the journal.
 * The next line of a key says how many were suppressed since the last one; the counts themselves are in metrics.
 * At most `maxKeys` keys are kept: keys whose interval has passed are forgotten first, and while every key is live
 * a new key shares one overflow key (so memory stays bounded and the journal still gets a line per interval).
 */
export class RateLimitedLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = MAX_LOG_KEYS,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    let entryKey = key;
    if (!this.#last.has(key) && this.#last.size >= this.maxKeys) {
      this.#forgetQuiet(now);
      if (this.#last.size >= this.maxKeys) entryKey = OVERFLOW_KEY;
    }
    const entry = this.#last.get(entryKey);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.delete(entryKey);
    this.#last.set(entryKey, { at: now, suppressed: 0 });
    this.log.warn(suppressed > 0 ? { ...fields, suppressedSinceLastLine: suppressed } : fields, message);
  }

  /** Keys held now (at most maxKeys + 1). */
  get size(): number {
    return this.#last.size;
  }

  /** Forgets keys whose interval has passed, oldest first (their suppressed counts are in the metrics). */
  #forgetQuiet(now: number): void {
    // Map order is insertion order and each line re-inserts its key: the oldest lines come first.
    for (const [key, entry] of this.#last) {
      if (now - entry.at < this.intervalMs || this.#last.size < this.maxKeys / 2) break;
      this.#last.delete(key);
    }
  }
}
