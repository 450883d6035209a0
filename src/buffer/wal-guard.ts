import type { Database } from 'better-sqlite3';
import { statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { SampleMetrics } from './buffer-metrics.js';
import { errorCode } from './database.js';

/** Why a checkpoint was run outside SQLite's own wal_autocheckpoint (the label of the checkpoint counter). */
export type CheckpointReason = 'low_space' | 'pressure' | 'write_failed' | 'room_for_alert';

/** Below this the WAL is not worth a look (one alert commit's frames). */
const WAL_CHECK_BYTES = 32 * 1024;
/** A WAL this big is truncated rather than restarted when space runs low: its room is better given to the file. */
const WAL_KEEP_BYTES = 1024 * 1024;

/**
 * Keeps the write-ahead log small enough that a checkpoint can always complete.
 *
 * Why: a checkpoint copies the WAL's pages into the database file, which grows by the pages that are new; only a
 * complete checkpoint lets the WAL start over. With wal_autocheckpoint at 16 MB (for throughput) on a small disk the
 * WAL filled the disk before the first checkpoint (measured: 12 MB of WAL beside a 4 KB database on a 20 MB tmpfs);
 * from then on no checkpoint could finish, no delete could commit, and the disk stayed full for good. So after each
 * commit, once the WAL takes more than half of the free space, it is checkpointed: the database file then never
 * needs more room to take the WAL in than there is. On a roomy disk this never triggers.
 *
 * Modes: TRUNCATE gives the WAL's blocks back to the file system (after a commit failed half-way, its frames may
 * hold a lot); RESTART keeps them, so that the next commits reuse the WAL's own room — what a commit on a full disk
 * needs, since every commit first appends to the WAL.
 */
export class WalGuard {
  readonly #wal: string;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #metrics: SampleMetrics;
  #db: Database | undefined;
  #incompleteLogged = false;

  constructor(file: string, log: Logger, metrics: SampleMetrics) {
    this.#wal = `${file}-wal`;
    this.#dir = dirname(file);
    this.#log = log;
    this.#metrics = metrics;
  }

  /** The connection checkpoints run on (any connection of the file will do; the sample writer's is given). */
  attach(db: Database): void {
    this.#db = db;
  }

  /** Size of the WAL file, bytes. */
  walBytes(): number {
    try {
      return statSync(this.#wal).size;
    } catch {
      return 0;
    }
  }

  /** Bytes free for us on the file system of the database (Infinity when it cannot be told). */
  freeBytes(): number {
    try {
      const s = statfsSync(this.#dir);
      return s.bavail * s.bsize;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  /**
   * After a commit: checkpoints when the WAL takes more than half of the free space, or — `underPressure`, while
   * commits fail for room — when it is past WAL_KEEP_BYTES.
   */
  afterCommit(underPressure = false): void {
    const wal = this.walBytes();
    if (wal < WAL_CHECK_BYTES) return;
    if (underPressure && wal > WAL_KEEP_BYTES) {
      this.checkpoint('pressure', 'TRUNCATE');
      return;
    }
    if (wal * 2 <= this.freeBytes()) return;
    this.checkpoint('low_space', wal > WAL_KEEP_BYTES ? 'TRUNCATE' : 'RESTART');
  }

  /**
   * Hands up to `pages` free pages of the database back to the file system (they leave the file at the next
   * checkpoint). Returns false when it could not (no room for the moves in the WAL). Never throws.
   */
  vacuum(pages: number): boolean {
    const db = this.#db;
    if (!db?.open) return false;
    try {
      // db.pragma() runs the pragma to completion: each step of it frees one page (see Retention.step).
      db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(pages))})`);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Checkpoints the whole WAL (see the class comment for the mode). Returns true when it completed. Never throws:
   * on a full disk it may fail (the database file cannot grow), which the caller answers by making room.
   */
  checkpoint(reason: CheckpointReason, mode: 'TRUNCATE' | 'RESTART'): boolean {
    const db = this.#db;
    if (!db?.open) return false;
    let complete = false;
    try {
      const [row] = db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number; log: number; checkpointed: number }>;
      complete = row !== undefined && row.busy === 0 && row.log === row.checkpointed;
      this.#metrics.walCheckpoints.inc({ reason, result: complete ? 'complete' : 'incomplete' });
    } catch (err) {
      this.#metrics.walCheckpoints.inc({ reason, result: 'failed' });
      if (!this.#incompleteLogged) this.#log.warn({ err, code: errorCode(err), reason }, 'WAL checkpoint failed; retried after the next commit');
      this.#incompleteLogged = true;
      return false;
    }
    if (complete) this.#incompleteLogged = false;
    return complete;
  }
}
