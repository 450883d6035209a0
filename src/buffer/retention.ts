import type { Database, Statement } from 'better-sqlite3';
import type { TagRegistry } from './tag-registry.js';

export type PruneReason = 'age' | 'size' | 'disk_full';

export interface RetentionOptions {
  /**
   * Samples older than this are deleted. Age is measured by each tag's source timestamps against the wall clock,
   * or against the tag's own newest sample when that is behind the wall clock (a source whose clock is behind).
   */
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

/** Oldest and newest source timestamp of one tag (null when it has no samples). */
type Bounds = { oldest: number | null; newest: number | null };

/** Where one tag is cut in a pass, and which bound decided it. */
type TagCutoff = { cutoff: number; reason: 'age' | 'size' };

interface Pass {
  reason: PruneReason;
  /** Wall clock when the pass was planned. */
  now: number;
  /** Share of each tag's own time span a size pass deletes; 0 for an age pass. */
  share: number;
  tagIds: number[];
  cursor: number;
  /** Cutoff of the tag at `cursor` and why, computed when the cursor reaches it (undefined: not yet; null: no samples). */
  current: TagCutoff | null | undefined;
  /** Rows this pass deleted so far. */
  deleted: number;
}

/**
 * Retention by age and by size, in small steps run from a timer so ingest is never stalled.
 *
 * A pass deletes, tag by tag, the samples older than that tag's cutoff. Age: `now - maxAge`, or the tag's newest
 * sample minus maxAge when its newest sample is older than now (its source's clock is behind: the samples it just
 * sent must not be deleted as old). Size: from above 95 % of maxSize, every tag loses the same share of its own time
 * span, enough to bring the pages in use down to 85 % (assuming an even rate; the next pass corrects the estimate);
 * cutting each tag by its own span keeps a source whose clock is far ahead or behind from costing the other tags
 * their history, and a tag's newest sample is never deleted for size. Deleted pages go to the freelist and are
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
    tagBounds: Statement<[{ tag: number }]>;
    allBounds: Statement<[]>;
    pageCount: Statement<[]>;
    freelist: Statement<[]>;
    pageSize: Statement<[]>;
  };
  #pass: Pass | undefined;
  #lastAgePassAt = Number.NEGATIVE_INFINITY;
  /** When a size pass last found nothing to delete (the bound is then held by other data, e.g. the outbox). */
  #emptySizePassAt = Number.NEGATIVE_INFINITY;

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
      // One index seek at each end.
      tagBounds: db.prepare(`
        SELECT (SELECT ts FROM samples WHERE tag_id = @tag ORDER BY ts ASC LIMIT 1) AS oldest,
               (SELECT ts FROM samples WHERE tag_id = @tag ORDER BY ts DESC LIMIT 1) AS newest`),
      allBounds: db.prepare(`
        SELECT t.id AS id,
               (SELECT ts FROM samples s WHERE s.tag_id = t.id ORDER BY ts ASC LIMIT 1) AS oldest,
               (SELECT ts FROM samples s WHERE s.tag_id = t.id ORDER BY ts DESC LIMIT 1) AS newest
        FROM tags t`),
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
      const deleted = { age: 0, size: 0 };
      this.#db.transaction(() => {
        // At least one statement per step, so even a zero budget makes progress.
        do {
          const tagId = pass.tagIds[pass.cursor];
          if (tagId === undefined) break;
          if (pass.current === undefined) pass.current = this.#cutoffOf(pass, tagId);
          const n = pass.current
            ? this.#sql.deleteOlder.run({ tag: tagId, cutoff: pass.current.cutoff, limit: DELETE_CHUNK_ROWS }).changes
            : 0;
          if (pass.current) deleted[pass.current.reason] += n;
          // A full chunk means this tag may have more: stay on it.
          if (n < DELETE_CHUNK_ROWS) {
            pass.cursor++;
            pass.current = undefined;
          }
        } while (performance.now() < deadline);
      })();
      for (const reason of ['age', 'size'] as const) {
        pass.deleted += deleted[reason];
        if (deleted[reason] > 0) this.#onPruned(reason, deleted[reason]);
      }
      if (pass.cursor < pass.tagIds.length) return true;
      this.#pass = undefined;
      if (pass.reason === 'size' && pass.deleted === 0) this.#emptySizePassAt = pass.now;
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
    const bounds = (this.#sql.allBounds.all() as Array<Bounds & { id: number }>).filter(
      (b): b is { id: number; oldest: number; newest: number } => b.oldest !== null && b.newest !== null,
    );
    if (bounds.length === 0) return 0;
    let deleted = 0;
    // Widen the slice off the oldest end until enough rows went: 0.01 %, 0.02 %, 0.04 % ... of each tag's own
    // history (small steps: on a full disk every delete has to fit in the WAL). Every tag loses the same share of
    // its history, never one tag all of it, and a source whose clock is far off cannot widen the others' slices.
    for (let share = 1e-4; deleted < rows; share *= 2) {
      this.#db.transaction(() => {
        for (const b of bounds) {
          const cutoff = share >= 1 ? b.newest + 1 : b.oldest + Math.ceil((b.newest - b.oldest) * share);
          let n: number;
          do {
            n = this.#sql.deleteOlder.run({ tag: b.id, cutoff, limit: DELETE_CHUNK_ROWS }).changes;
            deleted += n;
          } while (n === DELETE_CHUNK_ROWS);
        }
      })();
      if (share >= 1) break;
    }
    if (deleted > 0) this.#onPruned('disk_full', deleted);
    return deleted;
  }

  /**
   * Decides what the next pass deletes: a size pass when over the high-water mark (it also applies the age cutoff),
   * else an age pass when due. A size pass that found nothing to delete is not repeated before an age pass is due.
   */
  #plan(): Pass | undefined {
    const now = this.#options.now();
    const used = this.usedBytes();
    if (used > this.#options.maxSizeBytes * HIGH_WATER && now - this.#emptySizePassAt >= this.#options.agePassIntervalMs) {
      this.#lastAgePassAt = now;
      return this.#newPass('size', now, (used - this.#options.maxSizeBytes * LOW_WATER) / used);
    }
    if (now - this.#lastAgePassAt >= this.#options.agePassIntervalMs) {
      this.#lastAgePassAt = now;
      return this.#newPass('age', now, 0);
    }
    return undefined;
  }

  #newPass(reason: PruneReason, now: number, share: number): Pass {
    return { reason, now, share, tagIds: this.#tags.ids(), cursor: 0, current: undefined, deleted: 0 };
  }

  /** The cutoff of one tag in a pass (see the class comment); null when the tag has no samples. */
  #cutoffOf(pass: Pass, tagId: number): TagCutoff | null {
    const { oldest, newest } = this.#sql.tagBounds.get({ tag: tagId }) as Bounds;
    if (oldest === null || newest === null) return null;
    const byAge = Math.min(pass.now, newest) - this.#options.maxAgeMs;
    if (pass.share <= 0) return { cutoff: byAge, reason: 'age' };
    const bySize = Math.min(newest, oldest + Math.max(1, Math.ceil((newest - oldest) * pass.share)));
    return bySize > byAge ? { cutoff: bySize, reason: 'size' } : { cutoff: byAge, reason: 'age' };
  }

  /** Free pages worth returning: the file is over its bound, or more than a quarter of it is free. */
  #vacuumDue(): boolean {
    const free = this.#sql.freelist.get() as number;
    if (free === 0) return false;
    const pages = this.#sql.pageCount.get() as number;
    return this.fileBytes() > this.#options.maxSizeBytes || free > pages / 4;
  }
}
