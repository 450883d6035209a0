import { closeSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';

/**
 * A file of real, allocated blocks kept beside the database, given back to the file system when the disk is full
 * so an alert can still be committed.
 *
 * Why: on a full disk SQLite cannot even delete old samples to make room — a delete appends to the WAL, and the
 * WAL can only be reset after a checkpoint that may itself need to grow the database file. Freeing a few MB lets
 * the deletes (and the alert after them) commit. The reserve is re-created once writes succeed again.
 */
export class DiskReserve {
  readonly #path: string;
  readonly #bytes: number;

  constructor(path: string, bytes: number) {
    this.#path = path;
    this.#bytes = bytes;
  }

  /** True when the reserve file exists at its full size. */
  get held(): boolean {
    try {
      return statSync(this.#path).size >= this.#bytes;
    } catch {
      return false;
    }
  }

  /**
   * Creates the reserve if it is missing. Writes zeros (not a sparse file, which would reserve nothing).
   * Returns false when there is no room for it (the partial file is removed again).
   */
  ensure(): boolean {
    if (this.#bytes <= 0 || this.held) return true;
    let fd: number | undefined;
    try {
      fd = openSync(this.#path, 'w');
      const chunk = Buffer.alloc(Math.min(this.#bytes, 1 << 20));
      for (let written = 0; written < this.#bytes; ) {
        written += writeSync(fd, chunk, 0, Math.min(chunk.length, this.#bytes - written));
      }
      return true;
    } catch {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
      this.release();
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Deletes the reserve, giving its blocks back. Returns true when there was one to give. */
  release(): boolean {
    try {
      unlinkSync(this.#path);
      return true;
    } catch {
      return false;
    }
  }
}
