import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { Backoff } from '../core/backoff.js';
import type { SampleMetrics } from './buffer-metrics.js';
import { errorCode, isFullError } from './database.js';
import { DiskReserve, RESERVE_WAL_BYTES } from './disk-reserve.js';
import type { Retention } from './retention.js';
import { WalGuard } from './wal-guard.js';
import { monotonicMs } from '../core/source-clock.js';

export interface WriteFaultsOptions {
  file: string;
  now: () => number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Size of the disk reserve file (0: none). */
  diskReserveBytes: number;
}

/**
 * Samples deleted at once when an alert does not fit on a full disk: ~60 KB of pages, room for a dozen alerts, in a
 * delete small enough to fit in the room one reserve slice gives (Retention.freeOldest widens its slice in a few
 * commits, each appending to the WAL: measured up to ~500 KB of WAL for 4,000 rows of 8 tags).
 */
const FREE_ROWS_FOR_ALERT = 2_000;
/** Disk reserve lent to the outbox at a time, when even deleting samples cannot commit: its WAL room. */
const RESERVE_SLICE_BYTES = RESERVE_WAL_BYTES;
/**
 * After a commit failed for room, samples are tried again only once this much is free beyond the reserve: the room
 * that deleting old samples makes for alerts must stay theirs, not be taken back by the next sample commit.
 */
const RESUME_FREE_BYTES = 2 * 1024 * 1024;
/** Free pages handed back to the file system after deleting samples for an alert (what 2,000 rows free, and more). */
const VACUUM_PAGES_FOR_ALERT = 128;
/** Room left free when the reserve is refilled from deleted telemetry: the alert's WAL frames and its new pages. */
const ROOM_LEFT_FOR_ALERT = 256 * 1024;

interface Failure {
  code: string;
  message: string;
  since: number;
}

/**
 * What the buffer does when the disk refuses writes (full, read-only, I/O errors): remembers the failure for
 * health, logs it once when it starts and once when it ends (rates belong in metrics), spaces the retries with
 * backoff, keeps the WAL within the free space (WalGuard), and manages the disk reserve that only the outbox may use.
 *
 * Full disk, in order: samples stop being committed and wait in memory (bounded, the oldest dropped and counted);
 * an alert that does not fit first gets a checkpoint, then the oldest stored samples deleted (telemetry goes before
 * alerts), and only when even that delete cannot commit a slice of the reserve. While any of the reserve is lent,
 * samples are not committed: the room that comes back (a checkpoint, acked alerts, an operator) refills the reserve
 * first, and writing resumes once it is whole.
 */
export class WriteFaults {
  readonly #log: Logger;
  readonly #metrics: SampleMetrics;
  readonly #options: WriteFaultsOptions;
  readonly #backoff: Backoff;
  readonly #reserve: DiskReserve;
  readonly #wal: WalGuard;
  /** Some of the reserve was lent to the outbox: samples wait until it is whole, so they cannot eat its room. */
  #reserveShort = false;
  #failure: Failure | undefined;
  #retryAt = 0;

  constructor(log: Logger, metrics: SampleMetrics, options: WriteFaultsOptions) {
    this.#log = log;
    this.#metrics = metrics;
    this.#options = options;
    this.#backoff = new Backoff({ initialMs: options.retryInitialMs, maxMs: options.retryMaxMs });
    this.#reserve = new DiskReserve(`${options.file}-reserve`, options.diskReserveBytes);
    this.#wal = new WalGuard(options.file, log, metrics);
  }

  /** Bytes the disk reserve holds now, and should hold. */
  get reserve(): { bytes: number; targetBytes: number } {
    return { bytes: this.#reserve.sizeBytes, targetBytes: this.#reserve.targetBytes };
  }

  /** The SQLite error code while writes fail, else undefined. */
  get failingCode(): string | undefined {
    return this.#failure?.code;
  }

  /** False while a failure's backoff delay runs (timers skip their commit; an explicit flush still tries). */
  retryDue(): boolean {
    return !this.#failure || monotonicMs() >= this.#retryAt;
  }

  /**
   * At start, with the sample writer's connection (checkpoints run on it): creates the disk reserve; without room
   * for it, samples wait as while it is lent.
   */
  reserveAtStart(db: Database): void {
    this.#wal.attach(db);
    const ok = this.#reserve.ensure();
    this.#metrics.diskReserveBytes.set(this.#reserve.sizeBytes);
    if (ok) return;
    this.#reserveShort = true;
    this.#log.warn(
      { file: `${this.#options.file}-reserve`, bytes: this.#options.diskReserveBytes },
      'no room for the disk reserve kept for alerts; samples wait until there is',
    );
  }

  /**
   * Call before committing samples: throws SQLITE_FULL while the disk is full (samples wait in memory, and what room
   * there is stays for alerts), and makes a lent reserve whole before samples may be written again.
   */
  beforeCommit(): void {
    if (this.#failure?.code === 'SQLITE_FULL') {
      const free = this.#wal.freeBytes();
      if (free < this.#reserve.missingBytes + RESUME_FREE_BYTES) {
        throw Object.assign(new Error(`the disk is full (${free} bytes free): samples wait until room returns`), { code: 'SQLITE_FULL' });
      }
    }
    if (!this.#reserveShort) return;
    // Only try when the room is there: writing megabytes of zeros to find out costs more than a statfs.
    const missing = this.#reserve.missingBytes;
    if (missing > 0 && (this.#wal.freeBytes() < missing || !this.#reserve.ensure())) {
      this.#metrics.diskReserveBytes.set(this.#reserve.sizeBytes);
      throw Object.assign(
        new Error(`no room to make the disk reserve kept for alerts whole again (${missing} bytes lent to the outbox)`),
        { code: 'SQLITE_FULL' },
      );
    }
    this.#reserveShort = false;
    this.#metrics.diskReserveBytes.set(this.#reserve.sizeBytes);
    this.#log.info({ bytes: this.#reserve.sizeBytes }, 'disk reserve whole again');
  }

  /** Maintenance: tries to make a lent reserve whole again. Never throws. */
  restoreReserve(): void {
    if (!this.#reserveShort) return;
    try {
      this.beforeCommit();
    } catch {
      // Still no room: the next commit or maintenance run tries again.
    }
  }

  /** After every commit (samples or alerts): keeps the WAL within the free space. */
  committed(): void {
    this.#wal.afterCommit(this.#failure?.code === 'SQLITE_FULL');
  }

  /** A commit failed: count it; log and mark health on the first failure of a run. */
  failed(err: unknown, pendingSamples: number, memoryMaxSamples: number): void {
    const code = errorCode(err);
    this.#metrics.writeErrors.inc({ code });
    this.#retryAt = monotonicMs() + this.#backoff.next();
    // Give the WAL's blocks back, and let the database file take what the WAL held (a commit may have failed
    // only because the WAL could not grow).
    if (isFullError(err)) this.#wal.checkpoint('write_failed', 'TRUNCATE');
    if (this.#failure) return;
    this.#failure = { code, message: (err as Error).message, since: this.#options.now() };
    const hint = isFullError(err) ? 'the disk is full' : 'the file system refused the write';
    this.#log.error(
      { err, code, file: this.#options.file, pendingSamples, memoryMaxSamples },
      `cannot commit samples (${hint}); holding them in memory and retrying`,
    );
  }

  /** A commit succeeded: ends a failure run. */
  succeeded(pendingSamples: number, droppedSamples: number): void {
    this.#wal.afterCommit(this.#failure?.code === 'SQLITE_FULL');
    const failure = this.#failure;
    if (!failure) return;
    this.#failure = undefined;
    this.#backoff.reset();
    this.#log.info(
      { code: failure.code, downMs: this.#options.now() - failure.since, pendingSamples, droppedSamples },
      'buffer database writable again',
    );
  }

  /** The health reason while writes fail. */
  healthReason(pendingSamples: number, droppedSamples: number): string | undefined {
    const f = this.#failure;
    if (!f) return undefined;
    return (
      `cannot write the database since ${new Date(f.since).toISOString()} (${f.code}: ${f.message}); ` +
      `${pendingSamples} samples held in memory, ${droppedSamples} dropped`
    );
  }

  /**
   * The outbox's hook on a full disk; true when it made room (the outbox then tries its commit again). Telemetry
   * first: a checkpoint (the WAL may be what holds the room), then the oldest samples deleted. When even that
   * delete cannot commit, a slice of the disk reserve is lent to the outbox, and samples wait until it is back.
   * False when there is nothing left to give.
   */
  makeRoomForAlert(retention: Retention): boolean {
    this.#wal.checkpoint('room_for_alert', 'RESTART');
    let deleted = this.#deleteOldestSamples(retention);
    if (!deleted) {
      const lent = this.#reserve.release(RESERVE_SLICE_BYTES);
      this.#metrics.diskReserveBytes.set(this.#reserve.sizeBytes);
      if (lent === 0) return false;
      if (!this.#reserveShort) {
        this.#log.warn(
          { lent, left: this.#reserve.sizeBytes, target: this.#options.diskReserveBytes },
          'disk full: lending the disk reserve to the outbox; samples wait until it is whole again',
        );
      }
      this.#reserveShort = true;
      // With the lent room the checkpoint can complete and the delete commit.
      this.#wal.checkpoint('room_for_alert', 'RESTART');
      deleted = this.#deleteOldestSamples(retention);
    }
    if (deleted) {
      // Telemetry pays: the deleted samples' pages go back to the file system, where they refill the reserve
      // first and take the alert after. The reserve itself is spent only when no telemetry is left to delete.
      this.#wal.vacuum(VACUUM_PAGES_FOR_ALERT);
      this.#wal.checkpoint('room_for_alert', 'TRUNCATE');
    }
    if (this.#reserveShort && this.#reserve.ensure(this.#wal.freeBytes() - ROOM_LEFT_FOR_ALERT)) this.#reserveShort = false;
    this.#metrics.diskReserveBytes.set(this.#reserve.sizeBytes);
    return true;
  }

  #deleteOldestSamples(retention: Retention): boolean {
    try {
      const rows = retention.freeOldest(FREE_ROWS_FOR_ALERT);
      if (rows > 0) this.#log.debug({ rows }, 'disk full: deleted the oldest samples to store an alert');
      return rows > 0;
    } catch (err) {
      this.#metrics.writeErrors.inc({ code: errorCode(err) });
      this.#log.debug({ err, code: errorCode(err), free: this.#wal.freeBytes(), wal: this.#wal.walBytes() }, 'disk full: could not delete samples to store an alert');
      return false;
    }
  }
}
