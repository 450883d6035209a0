import type { Database, Statement } from 'better-sqlite3';
import type { TagRegistry } from './tag-registry.js';

export type PruneReason = 'age' | 'size' | 'disk_full';

export interface RetentionOptions {
  /** Samples older than this (by their source timestamp against the wall clock) are deleted. */
  maxAgeMs: number;
  /** Bound on the database: pages in use are kept below it, and the file is shrunk when it exceeds it. */
  maxSizeBytes: number;
  now: () => number;
  /** How often an age pass runs when nothing else is due. */
  agePassIntervalMs: number;
}

/** Rows deleted per tag per statement: a small delete rewrites few pages and keeps the WAL small. */
const DELETE_CHUNK_ROWS = 2_000;
/** Size pruning starts above this share of maxSize and deletes down to LOW_WATER (hysteresis: no pruning every second). */
const HIGH_WATER = 0.95;
const LOW_WATER = 0.85;
/** Pages handed back to the file system per incremental vacuum step (1 MB at 4 KB pages). */
const VACUUM_STEP_PAGES = 256;

interface Pass {
  cutoff: number;
  reason: PruneReason;
  tagIds: number[];
  cursor: number;
  /** Rows this pass deleted so far. */
  deleted: number;
}

/**
 * Retention by age and by size, in small steps run from a timer so ingest is never stalled.
 *
 * A pass deletes, tag by tag, the samples older than a cutoff: `now - maxAge` for age, and for size a time slice
 * off the oldest end of the whole history big enough to bring the pages in use from above 95 % of maxSize down to
 * 85 % (assuming an even rate; the next pass corrects the estimate). Deleted pages go to the freelist and are
 * reused by new samples, so the file does not grow while the pages in use stay below the bound. When the file is
 * larger than maxSize anyway (the bound was lowered, or a burst of deletes left most of the file free) the free
 * pages are handed back to the file system by `PRAGMA incremental_vacuum` in 1 MB steps.
 */
export class Retention {
  readonly #db: Database;
  readonly #tags: TagRegistry;
  readonly #options: RetentionOptions;
  readonly #onPruned: (reason: PruneReason, rows: number) => void;
  readonly #sql: {
    deleteOlder: Statement<[{ tag: number; cutoff: number; limit: number }]>;
    bounds: Statement<[]>;
    pageCount: Statement<[]>;
    freelist: Statement<[]>;
    pageSize: Statement<[]>;
  };
  #pass: Pass | undefined;
  #lastAgePassAt = Number.NEGATIVE_INFINITY;

  constructor(db: Database, tags: TagRegistry, options: RetentionOptions, onPruned: (reason: PruneReason, rows: number) => void) {
    this.#db = db;
    this.#tags = tags;
    this.#options = options;
    this.#onPruned = onPruned;
    this.#sql = {
      // Deletes at most `limit` of the oldest rows of a tag older than `cutoff`, without needing DELETE ... LIMIT
      // (a compile option): the bound is the timestamp of the (limit + 1)th oldest row.
      deleteOlder: db.prepare(`
        DELETE FROM samples WHERE tag_id = @tag AND ts < coalesce(
          (SELECT ts FROM samples WHERE tag_id = @tag AND ts < @cutoff ORDER BY ts LIMIT 1 OFFSET @limit), @cutoff)`),
      // One index seek per tag at each end.
      bounds: db.prepare(`
        SELECT min(o) AS oldest, max(n) AS newest FROM (
          SELECT (SELECT ts FROM samples s WHERE s.tag_id = t.id ORDER BY ts ASC LIMIT 1) AS o,
                 (SELECT ts FROM samples s WHERE s.tag_id = t.id ORDER BY ts DESC LIMIT 1) AS n
          FROM tags t)`),
      pageCount: db.prepare('PRAGMA page_count').pluck(),
      freelist: db.prepare('PRAGMA freelist_count').pluck(),
      pageSize: db.prepare('PRAGMA page_size').pluck(),
    };
  }

  /** Bytes in pages that hold data (the file minus its free pages). */
  usedBytes(): number {
    const pageSize = this.#sql.pageSize.get() as number;
    return ((this.#sql.pageCount.get() as number) - (this.#sql.freelist.get() as number)) * pageSize;
  }

  /** Size of the main database file as SQLite sees it (WAL content included). */
  fileBytes(): number {
    return (this.#sql.pageCount.get() as number) * (this.#sql.pageSize.get() as number);
  }

  /**
   * Runs deletes (and vacuum steps) for about `budgetMs`. Returns true when more work is waiting, so the caller
   * schedules the next step soon instead of after its idle interval.
   */
  step(budgetMs: number): boolean {
    const deadline = performance.now() + budgetMs;
    this.#pass ??= this.#plan();
    if (this.#pass) {
      const pass = this.#pass;
      let deleted = 0;
      this.#db.transaction(() => {
        // At least one statement per step, so even a zero budget makes progress.
        do {
          const tagId = pass.tagIds[pass.cursor];
          if (tagId === undefined) break;
          const n = this.#sql.deleteOlder.run({ tag: tagId, cutoff: pass.cutoff, limit: DELETE_CHUNK_ROWS }).changes;
          deleted += n;
          // A full chunk means this tag may have more: stay on it.
          if (n < DELETE_CHUNK_ROWS) pass.cursor++;
        } while (performance.now() < deadline);
      })();
      pass.deleted += deleted;
      if (deleted > 0) this.#onPruned(pass.reason, deleted);
      if (pass.cursor < pass.tagIds.length) return true;
      this.#pass = undefined;
      // A pass that deleted something may not have been enough (size) or may have left vacuum work.
      if (pass.deleted > 0) return true;
    }
    let vacuumed = false;
    while (performance.now() < deadline && this.#vacuumDue()) {
      // Each sqlite3_step of this pragma frees one page, so it must run to completion: db.pragma() does, a
      // prepared statement's run() would free a single page.
      this.#db.pragma(`incremental_vacuum(${VACUUM_STEP_PAGES})`);
      vacuumed = true;
    }
    return vacuumed && this.#vacuumDue();
  }

  /**
   * The disk is full and an alert must be stored: deletes at least `rows` (at most about twice as many) of the
   * oldest samples now (telemetry goes before alerts). Returns the rows deleted, 0 when there are no samples left.
   */
  freeOldest(rows: number): number {
    const { oldest, newest } = this.#sql.bounds.get() as { oldest: number | null; newest: number | null };
    if (oldest === null || newest === null) return 0;
    const span = Math.max(1, newest - oldest);
    let deleted = 0;
    // Widen the slice off the oldest end until enough rows went: 0.01 %, 0.02 %, 0.04 % ... of the history (small
    // steps: on a full disk every delete has to fit in the WAL). Every tag is cut at the same time, so what goes is
    // the oldest history of all tags, never one tag's whole history.
    for (let share = 1e-4; deleted < rows; share *= 2) {
      const cutoff = share >= 1 ? newest + 1 : oldest + Math.ceil(span * share);
      this.#db.transaction(() => {
        for (const tagId of this.#tags.ids()) {
          let n: number;
          do {
            n = this.#sql.deleteOlder.run({ tag: tagId, cutoff, limit: DELETE_CHUNK_ROWS }).changes;
            deleted += n;
          } while (n === DELETE_CHUNK_ROWS);
        }
      })();
      if (share >= 1) break;
    }
    if (deleted > 0) this.#onPruned('disk_full', deleted);
    return deleted;
  }

  /** Decides what the next pass deletes: a size pass when over the high-water mark, else an age pass when due. */
  #plan(): Pass | undefined {
    const now = this.#options.now();
    const ageCutoff = now - this.#options.maxAgeMs;
    const used = this.usedBytes();
    if (used > this.#options.maxSizeBytes * HIGH_WATER) {
      const { oldest, newest } = this.#sql.bounds.get() as { oldest: number | null; newest: number | null };
      if (oldest !== null && newest !== null) {
        const share = (used - this.#options.maxSizeBytes * LOW_WATER) / used;
        const sizeCutoff = oldest + Math.max(1, Math.ceil((newest - oldest) * share));
        if (sizeCutoff > ageCutoff) return this.#newPass(sizeCutoff, 'size');
      }
    }
    if (now - this.#lastAgePassAt >= this.#options.agePassIntervalMs) {
      this.#lastAgePassAt = now;
      return this.#newPass(ageCutoff, 'age');
    }
    return undefined;
  }

  #newPass(cutoff: number, reason: PruneReason): Pass {
    return { cutoff, reason, tagIds: this.#tags.ids(), cursor: 0, deleted: 0 };
  }

  /** Free pages worth returning: the file is over its bound, or more than a quarter of it is free. */
  #vacuumDue(): boolean {
    const free = this.#sql.freelist.get() as number;
    if (free === 0) return false;
    const pages = this.#sql.pageCount.get() as number;
    return this.fileBytes() > this.#options.maxSizeBytes || free > pages / 4;
  }
}
