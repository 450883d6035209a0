import BetterSqlite3, { type Database } from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { migrate } from './migrations.js';

export interface OpenOptions {
  /**
   * `NORMAL` for the sample writer (a commit survives a process crash; a power cut may lose the last commits),
   * `FULL` for the alert outbox (the WAL is fsynced on every commit, so an enqueued alert survives a power cut).
   */
  synchronous: 'NORMAL' | 'FULL';
  /**
   * WAL pages after which a commit checkpoints. The default 1,000 pages is smaller than the rewrite of one big
   * sample batch and halves throughput (STACK-NOTES); 0 leaves checkpointing to the caller.
   */
  walAutocheckpointPages?: number;
}

/**
 * Opens (creating if needed) a buffer database: incremental auto-vacuum (so freed pages can be handed back to the
 * file system in small steps), WAL, and the current schema. Several connections of one process may open the same
 * file; each sets its own per-connection pragmas.
 */
export function openDatabase(file: string, options: OpenOptions): Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new BetterSqlite3(file);
  try {
    // Only takes effect on a database without tables yet; must precede the first write (journal_mode=WAL writes).
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous}`);
    db.pragma(`wal_autocheckpoint = ${options.walAutocheckpointPages ?? 10_000}`);
    // Keep up to 64 MB of WAL file allocated after a checkpoint instead of truncating it (no reallocation at every
    // checkpoint). When the disk runs low, WalGuard checkpoints with TRUNCATE and gives the blocks back.
    db.pragma('journal_size_limit = 67108864');
    // The outbox and the sample writer are separate connections of one thread; a checkpoint by another process
    // (the CLI, a backup) must not fail a commit outright.
    db.pragma('busy_timeout = 2000');
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** True for "no room to write": the disk (ENOSPC) or the page limit is full. A read-only file system is not this. */
export function isFullError(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_FULL';
}

/** A short machine-friendly code for an error, for metric labels and health reasons. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'UNKNOWN';
}
