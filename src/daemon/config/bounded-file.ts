import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';

/** Largest config file read (a hand-edited YAML file of a big line is well under 1 MB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Largest `${file:}` secret read (a password, a key passphrase, a token). */
export const MAX_SECRET_BYTES = 64 * 1024;

export type BoundedRead = { ok: true; text: string } | { ok: false; why: string };

/**
 * Reads a regular file of at most `maxBytes`, as UTF-8. Anything else is refused before it is read: a FIFO would
 * block the open (and check-config) until a writer comes, and `/dev/zero` or `/dev/urandom` never end — read whole,
 * they filled 3.4 GB of memory in 12 s. The file is opened with O_NONBLOCK (a FIFO swapped in after the stat
 * cannot block the open), checked again on the open descriptor, and read with the bound, so a file that grows while
 * it is read still stops at `maxBytes`.
 */
export function readBoundedFile(file: string, maxBytes: number): BoundedRead {
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
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) return { ok: false, why: `larger than ${formatLimit(maxBytes)}` };
    }
    return { ok: true, text: buffer.subarray(0, length).toString('utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'a directory' : String(code ?? err);
    return { ok: false, why };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
