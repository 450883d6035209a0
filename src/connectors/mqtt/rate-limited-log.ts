import type { Logger } from 'pino';

/**
 * Logs at most one line per key per interval: a device spamming malformed payloads must not flood the journal.
 * The next line of a key says how many were suppressed since the last one; the counts themselves are in metrics.
 */
export class RateLimitedLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    const entry = this.#last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.#last.set(key, { at: now, suppressed: 0 });
    this.log.warn(suppressed > 0 ? { ...fields, suppressedSinceLastLine: suppressed } : fields, message);
  }
}
