import type { Logger } from 'pino';
import { Backoff } from '../core/backoff.js';
import type { SampleMetrics } from './buffer-metrics.js';
import { errorCode, isFullError } from './database.js';
import { DiskReserve } from './disk-reserve.js';
import type { Retention } from './retention.js';

export interface WriteFaultsOptions {
  file: string;
  now: () => number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Size of the disk reserve file (0: none). */
  diskReserveBytes: number;
}

/** Samples deleted at once when an alert does not fit on a full disk. */
const FREE_ROWS_FOR_ALERT = 20_000;

interface Failure {
  code: string;
  message: string;
  since: number;
}

/**
 * What the buffer does when the disk refuses writes (full, read-only, I/O errors): remembers the failure for
 * health, logs it once when it starts and once when it ends (rates belong in metrics), spaces the retries with
 * backoff, and manages the disk reserve that lets alerts be stored on a full disk (telemetry before alerts).
 */
export class WriteFaults {
  readonly #log: Logger;
  readonly #metrics: SampleMetrics;
  readonly #options: WriteFaultsOptions;
  readonly #backoff: Backoff;
  readonly #reserve: DiskReserve;
  /** The reserve was given up for an alert: samples wait until it is back, so they cannot eat its room. */
  #reserveReleased = false;
  #failure: Failure | undefined;
  #retryAt = 0;

  constructor(log: Logger, metrics: SampleMetrics, options: WriteFaultsOptions) {
    this.#log = log;
    this.#metrics = metrics;
    this.#options = options;
    this.#backoff = new Backoff({ initialMs: options.retryInitialMs, maxMs: options.retryMaxMs });
    this.#reserve = new DiskReserve(`${options.file}-reserve`, options.diskReserveBytes);
  }

  /** The SQLite error code while writes fail, else undefined. */
  get failingCode(): string | undefined {
    return this.#failure?.code;
  }

  /** False while a failure's backoff delay runs (timers skip their commit; an explicit flush still tries). */
  retryDue(): boolean {
    return !this.#failure || Date.now() >= this.#retryAt;
  }

  /** Creates the disk reserve at start; without room for it, samples wait as after a release. */
  reserveAtStart(): void {
    if (this.#reserve.ensure()) return;
    this.#reserveReleased = true;
    this.#log.warn(
      { file: `${this.#options.file}-reserve`, bytes: this.#options.diskReserveBytes },
      'no room for the disk reserve; samples wait until there is',
    );
  }

  /** Call before committing samples: re-creates a released reserve first, or throws SQLITE_FULL. */
  beforeCommit(): void {
    if (!this.#reserveReleased) return;
    if (!this.#reserve.ensure()) {
      throw Object.assign(new Error('no room to re-create the disk reserve kept for alerts'), { code: 'SQLITE_FULL' });
    }
    this.#reserveReleased = false;
    this.#log.info('disk reserve re-created');
  }

  /** Maintenance: tries to re-create a released reserve while commits are not failing. Never throws. */
  restoreReserve(): void {
    if (!this.#reserveReleased || this.#failure) return;
    try {
      this.beforeCommit();
    } catch {
      // Still no room: the next commit or maintenance run tries again.
    }
  }

  /** A commit failed: count it; log and mark health on the first failure of a run. */
  failed(err: unknown, pendingSamples: number, memoryMaxSamples: number): void {
    const code = errorCode(err);
    this.#metrics.writeErrors.inc({ code });
    this.#retryAt = Date.now() + this.#backoff.next();
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
   * The outbox's hook on a full disk. Telemetry first: delete the oldest samples so the alert fits. When even
   * the delete cannot commit (it needs WAL room too), give back the disk reserve and delete again.
   */
  makeRoomForAlert(retention: Retention): boolean {
    if (this.#deleteOldestSamples(retention)) return true;
    if (!this.#reserve.release()) return false;
    this.#reserveReleased = true;
    this.#log.warn({ bytes: this.#options.diskReserveBytes }, 'disk full: released the disk reserve to store an alert');
    this.#deleteOldestSamples(retention);
    return true;
  }

  #deleteOldestSamples(retention: Retention): boolean {
    try {
      const rows = retention.freeOldest(FREE_ROWS_FOR_ALERT);
      if (rows > 0) this.#log.warn({ rows }, 'disk full: deleted the oldest samples to store an alert');
      return rows > 0;
    } catch (err) {
      this.#metrics.writeErrors.inc({ code: errorCode(err) });
      this.#log.error({ err, code: errorCode(err) }, 'disk full: could not delete samples to store an alert');
      return false;
    }
  }
}
