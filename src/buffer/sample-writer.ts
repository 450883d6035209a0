import type { Database, Statement } from 'better-sqlite3';
import type { TagSample } from '../core/tag-sample.js';
import type { SampleMetrics } from './buffer-metrics.js';
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
  /** Pending samples are #queue[#head..]; the consumed prefix is cut off now and then rather than shifted per batch. */
  #queue: TagSample[] = [];
  #head = 0;
  /** Moving average of the commit cost per row, ms; starts at a typical 5 µs. */
  #rowCostMs = 0.005;
  #written = 0;
  #dropped = 0;

  constructor(db: Database, tags: TagRegistry, metrics: SampleMetrics, options: SampleWriterOptions) {
    this.#db = db;
    this.#tags = tags;
    this.#metrics = metrics;
    this.#options = options;
    // OR REPLACE: a source that re-sends a sample with the same timestamp (an OPC UA republish) overwrites it.
    this.#insert = db.prepare(
      'INSERT OR REPLACE INTO samples (tag_id, ts, value, quality, kind, status, text) VALUES (?, ?, ?, ?, ?, ?, ?)',
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

  /** Samples received and not yet committed. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Samples committed by this writer. */
  get written(): number {
    return this.#written;
  }

  /** Samples this writer dropped (memory bound reached while the disk failed, or an unusable timestamp). */
  get dropped(): number {
    return this.#dropped;
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
    let invalid = 0;
    try {
      this.#db.transaction(() => {
        for (let i = start; i < end; i++) {
          if (!this.#insertOne(queue[i]!)) invalid++;
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
    const stored = count - invalid;
    this.#written += stored;
    this.#metrics.rowsWritten.inc(stored);
    this.#metrics.commitSeconds.observe(elapsedMs / 1000);
    this.#metrics.pendingRows.set(this.pending);
    if (invalid > 0) {
      this.#dropped += invalid;
      this.#metrics.droppedSamples.inc({ reason: 'invalid_timestamp' }, invalid);
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

  #insertOne(s: TagSample): boolean {
    if (!Number.isFinite(s.ts)) return false;
    const tagId = this.#tags.ensure(s.tag, s.source);
    const ts = Number.isInteger(s.ts) ? s.ts : Math.round(s.ts);
    const quality = QUALITY[s.quality] ?? QUALITY.bad;
    const status = s.statusCode ?? null;
    const v = s.value;
    if (typeof v === 'number') this.#insert.run(tagId, ts, v, quality, KIND.number, status, null);
    else if (typeof v === 'boolean') this.#insert.run(tagId, ts, v ? 1 : 0, quality, KIND.boolean, status, null);
    else this.#insert.run(tagId, ts, null, quality, KIND.string, status, String(v));
    return true;
  }
}
