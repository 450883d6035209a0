import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/**
 * Bounded reads of files a person points the gateway at (config, secrets, model files): never a FIFO, a device or
 * an unbounded read. Shared by the config loader and check-config's look at model files.
 */

/** Largest config file read (a hand-edited YAML file of a big line is well under 1 MB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Largest `${file:}` secret read (a password, a key passphrase, a token). */
export const MAX_SECRET_BYTES = 64 * 1024;

export type BoundedRead = { ok: true; text: string } | { ok: false; why: string };
export type BoundedBytes = { ok: true; bytes: Buffer } | { ok: false; why: string; missing?: true };

/**
 * Reads a regular file of at most `maxBytes`. Anything else is refused before it is read: a FIFO would block the
 * open (and check-config) until a writer comes, and `/dev/zero` or `/dev/urandom` never end — read whole, they filled
 * 3.4 GB of memory in 12 s. The file is opened with O_NONBLOCK (a FIFO swapped in after the stat cannot block the
 * open), checked again on the open descriptor, and read with the bound, so a file that grows while it is read still
 * stops at `maxBytes`. Memory follows the file's size, not the bound (a model file may be allowed gigabytes).
 */
export function readBoundedBytes(file: string, maxBytes: number): BoundedBytes {
  let fd: number | undefined;
  try {
    const before = statSync(file);
    const kind = notRegular(before);
    if (kind) return { ok: false, why: `not a regular file (${kind})` };
    if (before.size > maxBytes) return { ok: false, why: `larger than ${formatLimit(maxBytes)} (${before.size} bytes)` };
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const opened = fstatSync(fd);
    const kindNow = notRegular(opened);
    if (kindNow) return { ok: false, why: `not a regular file (${kindNow})` };
    let buffer = Buffer.alloc(Math.min(opened.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > maxBytes) return { ok: false, why: `larger than ${formatLimit(maxBytes)}` };
        const grown = Buffer.alloc(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) return { ok: false, why: `larger than ${formatLimit(maxBytes)}` };
    return { ok: true, bytes: buffer.subarray(0, length) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory' : String(code ?? err);
    return code === 'ENOENT' ? { ok: false, why, missing: true } : { ok: false, why };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** `readBoundedBytes` as UTF-8 text (config files, `${file:}` secrets). */
export function readBoundedFile(file: string, maxBytes: number): BoundedRead {
  const read = readBoundedBytes(file, maxBytes);
  return read.ok ? { ok: true, text: read.bytes.toString('utf8') } : { ok: false, why: read.why };
}

function notRegular(stat: Stats): string | undefined {
  if (stat.isFile()) return undefined;
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}

function formatLimit(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MiB` : `${bytes / 1024} KiB`;
}
