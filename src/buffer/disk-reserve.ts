import { closeSync, ftruncateSync, openSync, statSync, truncateSync, unlinkSync, writeSync } from 'node:fs';

/**
 * Disk room kept for the alert outbox, per alert: a typical alert payload is 1.5–2.5 KB of JSON (measured: 2.2 KB
 * for 6 input tags × 10 recent samples), which SQLite stores in about half a 4 KB page; counting a whole page per
 * alert leaves room for the outbox's B-tree pages and heavier payloads.
 */
export const RESERVE_BYTES_PER_ALERT = 4096;
/**
 * Room on top of the alerts for the write-ahead log: the frames of one delete of old samples and one alert commit,
 * which must fit before a checkpoint can give the room back (see WalGuard).
 */
export const RESERVE_WAL_BYTES = 1024 * 1024;

/** Bytes of the disk reserve that holds `reserveAlerts` alerts (0 alerts: no reserve). */
export function reserveBytesFor(reserveAlerts: number): number {
  return reserveAlerts > 0 ? reserveAlerts * RESERVE_BYTES_PER_ALERT + RESERVE_WAL_BYTES : 0;
}

/**
 * A file of real, allocated blocks kept beside the database that only the alert outbox may use: on a full disk a
 * slice of it is given back to the file system so an alert can still be committed, and the sample writer does not
 * commit until the reserve is whole again (samples wait in memory), so telemetry can never eat the alerts' room.
 *
 * Why a file: on a full disk SQLite cannot even delete old samples to make room — a delete appends to the WAL, and
 * the WAL can only be reset after a checkpoint that may itself need to grow the database file. A file holds its
 * blocks against every writer on the file system (journald, other services), not just against our own samples.
 */
export class DiskReserve {
  readonly #path: string;
  readonly #bytes: number;

  constructor(path: string, bytes: number) {
    this.#path = path;
    this.#bytes = bytes;
  }

  /** The size the reserve should have. */
  get targetBytes(): number {
    return this.#bytes;
  }

  /** The size it has now. */
  get sizeBytes(): number {
    try {
      return statSync(this.#path).size;
    } catch {
      return 0;
    }
  }

  /** True when the reserve file exists at its full size (or no reserve is configured). */
  get held(): boolean {
    return this.#bytes <= 0 || this.sizeBytes >= this.#bytes;
  }

  /** Bytes the reserve lacks to be whole. */
  get missingBytes(): number {
    return Math.max(0, this.#bytes - this.sizeBytes);
  }

  /**
   * Grows the reserve back to its full size, or by `atMost` bytes. Writes zeros (not a sparse file, which would
   * reserve nothing). Returns true when the reserve is whole; on no room, what it had before is kept.
   */
  ensure(atMost = Number.POSITIVE_INFINITY): boolean {
    const had = this.sizeBytes;
    if (this.#bytes <= 0 || had >= this.#bytes) return true;
    const target = Math.min(this.#bytes, had + Math.max(0, Math.floor(atMost)));
    if (target <= had) return false;
    let fd: number | undefined;
    try {
      fd = openSync(this.#path, 'a');
      const chunk = Buffer.alloc(Math.min(target - had, 1 << 20));
      for (let size = had; size < target; ) {
        size += writeSync(fd, chunk, 0, Math.min(chunk.length, target - size));
      }
      return target >= this.#bytes;
    } catch {
      // ENOSPC half-way: give back what this attempt took, keep what the reserve had.
      if (fd !== undefined) {
        try {
          ftruncateSync(fd, had);
        } catch {
          // The next attempt measures the size again.
        }
      }
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /**
   * Gives up to `bytes` of the reserve back to the file system (its tail). Returns the bytes given, 0 when the
   * reserve is empty.
   */
  release(bytes: number = Number.POSITIVE_INFINITY): number {
    const size = this.sizeBytes;
    if (size === 0) return 0;
    const keep = Math.max(0, size - bytes);
    try {
      if (keep === 0) unlinkSync(this.#path);
      else truncateSync(this.#path, keep);
      return size - keep;
    } catch {
      return 0;
    }
  }
}
