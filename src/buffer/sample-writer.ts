import type { Database, Statement } from 'better-sqlite3';
import type { TagSample } from '../core/tag-sample.js';
import type { SampleMetrics } from './buffer-metrics.js';
import { errorCode } from './database.js';
import type { TagRegistry } from './tag-registry.js';

/** Stored encodings; see the samples table in migrations.ts. */
export const KIND = { number: 0, boolean: 1, string: 2 } as const;
export const QUALITY = { good: 0, uncertain: 1, bad: 2 } as const;

export interface SampleWriterOptions {
  /** Largest commit, in rows. */
  flushMaxRows: number;
  /** Samples held in memory at most; beyond it the oldest are dropped and counted. */
  memoryMaxSamples: number;
  /**
   * Target duration of one commit. A commit blocks the event loop for its whole duration, so big batches are
   * split: the chunk size follows the measured cost per row so that one commit takes about this long.
   */
  commitBudgetMs: number;
}

/** Smallest commit when splitting: a commit costs about one page rewrite per tag, so tiny commits waste I/O. */
const MIN_CHUNK_ROWS = 200;

/** Largest timestamp magnitude JavaScript dates represent (±100,000,000 days): beyond it `ts` is not a time. */
const MAX_TIMESTAMP_MS = 8.64e15;

/** Why a sample could not be stored; the label of lineguard_buffer_dropped_samples_total. */
type Invalid = 'invalid_timestamp' | 'invalid_sample';

/**
 * Holds received samples in memory and commits them in batches, one transaction per chunk. A failed commit
 * (disk full, read-only file system) rolls back and leaves the samples pending, so nothing is lost until the
 * memory bound is reached.
 */
export class SampleWriter {
  readonly #db: Database;
  readonly #tags: TagRegistry;
  readonly #metrics: SampleMetrics;
  readonly #options: SampleWriterOptions;
  readonly #insert: Statement<[number, number, number | null, number, number, number | null, string | null]>;
  readonly #replace: Statement<[{ value: number | null; quality: number; kind: number; status: number | null; text: string | null; tag: number; ts: number }]>;
  #replaced = 0;
  /** Pending samples are #queue[#head..]; the consumed prefix is cut off now and then rather than shifted per batch. */
  #queue: TagSample[] = [];
  #head = 0;
  /** Moving average of the commit cost per row, ms; starts at a typical 5 µs. */
  #rowCostMs = 0.005;
  #written = 0;
  #dropped = 0;
  #invalid = 0;
  #lastInvalid: { reason: Invalid; tag: string; source: string; ts: string } | undefined;

  constructor(db: Database, tags: TagRegistry, metrics: SampleMetrics, options: SampleWriterOptions) {
    this.#db = db;
    this.#tags = tags;
    this.#metrics = metrics;
    this.#options = options;
    // One row per (tag, source timestamp, ms). A second sample with the same timestamp replaces the first (the
    // newest arrival is the value held from then on, as in the runtime's memory); when it differs from the stored
    // one the overwritten sample is lost, and counted (lineguard_buffer_dropped_samples_total{reason="same_timestamp"}).
    // An identical re-send (an OPC UA republish) changes nothing and is not counted.
    this.#insert = db.prepare(
      'INSERT OR IGNORE INTO samples (tag_id, ts, value, quality, kind, status, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.#replace = db.prepare(
      'UPDATE samples SET value = @value, quality = @quality, kind = @kind, status = @status, text = @text WHERE tag_id = @tag AND ts = @ts ' +
        'AND (value IS NOT @value OR quality IS NOT @quality OR kind IS NOT @kind OR text IS NOT @text)',
    );
  }

  /** Queues samples for the next commit; drops (and counts) the oldest pending ones past the memory bound. */
  add(samples: readonly TagSample[]): void {
    for (const s of samples) this.#queue.push(s);
    const excess = this.pending - this.#options.memoryMaxSamples;
    if (excess > 0) {
      this.#head += excess;
      this.#dropped += excess;
      this.#metrics.droppedSamples.inc({ reason: 'memory_bound' }, excess);
      this.#compact();
    }
    this.#metrics.pendingRows.set(this.pending);
  }

  /** Stored samples overwritten by a different sample of the same tag with the same timestamp (ms). */
  get replaced(): number {
    return this.#replaced;
  }

  /** Samples received and not yet committed. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Samples committed by this writer. */
  get written(): number {
    return this.#written;
  }

  /** Samples this writer dropped (memory bound reached while the disk failed, an unusable timestamp or sample). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Samples dropped because a source sent them malformed (no usable timestamp, tag or value). */
  get invalid(): number {
    return this.#invalid;
  }

  /** The last malformed sample dropped, described for a log line (never the value itself: it may be huge). */
  get lastInvalid(): { reason: Invalid; tag: string; source: string; ts: string } | undefined {
    return this.#lastInvalid;
  }

  /** Rows the next `commitChunk` will commit at most. */
  get chunkRows(): number {
    const byBudget = Math.floor(this.#options.commitBudgetMs / this.#rowCostMs);
    return Math.max(MIN_CHUNK_ROWS, Math.min(this.#options.flushMaxRows, byBudget));
  }

  /**
   * Commits the oldest pending samples, at most `chunkRows`, in one transaction. Returns the number committed.
   * Throws the SQLite error when the commit failed; the samples then stay pending.
   */
  commitChunk(): number {
    const count = Math.min(this.pending, this.chunkRows);
    if (count === 0) return 0;
    const start = this.#head;
    const end = start + count;
    const queue = this.#queue;
    const t0 = performance.now();
    const invalid = { invalid_timestamp: 0, invalid_sample: 0 };
    try {
      this.#db.transaction(() => {
        for (let i = start; i < end; i++) {
          const problem = this.#insertOne(queue[i]!);
          if (problem) {
            invalid[problem]++;
            this.#lastInvalid = describeSample(queue[i], problem);
          }
        }
      })();
    } catch (err) {
      this.#tags.rollback();
      throw err;
    }
    this.#tags.commit();
    const elapsedMs = performance.now() - t0;
    this.#rowCostMs = 0.7 * this.#rowCostMs + 0.3 * Math.max(elapsedMs / count, 0.0002);
    this.#head = end;
    this.#compact();
    const stored = count - invalid.invalid_timestamp - invalid.invalid_sample;
    this.#written += stored;
    this.#metrics.rowsWritten.inc(stored);
    this.#metrics.commitSeconds.observe(elapsedMs / 1000);
    this.#metrics.pendingRows.set(this.pending);
    for (const reason of ['invalid_timestamp', 'invalid_sample'] as const) {
      if (invalid[reason] === 0) continue;
      this.#dropped += invalid[reason];
      this.#invalid += invalid[reason];
      this.#metrics.droppedSamples.inc({ reason }, invalid[reason]);
    }
    return count;
  }

  /** Releases the consumed prefix once it is most of the array (amortised O(1) per sample). */
  #compact(): void {
    if (this.#head > 65_536 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Inserts one sample; returns why it was not stored, if it was not. A sample a source got wrong (no tag name, a
   * value or status of the wrong type) is dropped alone: it must not fail the commit of the whole chunk, which
   * would be retried forever like a disk fault and stop ingest for every tag.
   */
  #insertOne(s: TagSample): Invalid | undefined {
    if (typeof s !== 'object' || s === null) return 'invalid_sample';
    if (typeof s.ts !== 'number' || !(Math.abs(s.ts) <= MAX_TIMESTAMP_MS)) return 'invalid_timestamp';
    const v: unknown = s.value;
    if (typeof s.tag !== 'string' || !(typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string')) {
      return 'invalid_sample';
    }
    const ts = Number.isInteger(s.ts) ? s.ts : Math.round(s.ts);
    const quality = QUALITY[s.quality] ?? QUALITY.bad;
    const status = Number.isSafeInteger(s.statusCode) ? s.statusCode! : null;
    try {
      const tagId = this.#tags.ensure(s.tag, typeof s.source === 'string' ? s.source : '');
      const value = typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : null;
      const kind = typeof v === 'number' ? KIND.number : typeof v === 'boolean' ? KIND.boolean : KIND.string;
      const text = typeof v === 'string' ? v : null;
      // NaN is stored as NULL by SQLite; compare it as such.
      const stored = value !== null && Number.isNaN(value) ? null : value;
      if (this.#insert.run(tagId, ts, value, quality, kind, status, text).changes === 0) {
        if (this.#replace.run({ value: stored, quality, kind, status, text, tag: tagId, ts }).changes > 0) {
          this.#replaced++;
          this.#metrics.droppedSamples.inc({ reason: 'same_timestamp' });
        }
      }
    } catch (err) {
      // Errors of this one row (a string too big for SQLite, a constraint): SQLite undid the statement and the
      // transaction goes on. Anything else (full disk, I/O) fails the chunk, which then stays pending.
      if (err instanceof RangeError || err instanceof TypeError || /^SQLITE_(TOOBIG|CONSTRAINT)/.test(errorCode(err))) {
        return 'invalid_sample';
      }
      throw err;
    }
    return undefined;
  }
}

function describeSample(s: unknown, reason: Invalid): { reason: Invalid; tag: string; source: string; ts: string } {
  const sample = (typeof s === 'object' && s !== null ? s : {}) as Partial<Record<keyof TagSample, unknown>>;
  const text = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 200) : String(typeof v === 'symbol' ? 'symbol' : v));
  return { reason, tag: text(sample.tag), source: text(sample.source), ts: text(sample.ts) };
}
