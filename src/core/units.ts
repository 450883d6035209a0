/**
 * Human units in the config file: durations like `250ms`, `30s`, `5m`, `12h`, `7d`, and sizes like `512MB`, `2GB`.
 * The patterns are exported so the config schema validates exactly what these parsers accept.
 */

export const DURATION_PATTERN = '^\\s*(\\d+(?:\\.\\d+)?)\\s*(ms|s|m|h|d|w)\\s*$';
export const SIZE_PATTERN = '^\\s*(\\d+(?:\\.\\d+)?)\\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\\s*$';

const DURATION_MS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };
const SIZE_BYTES: Record<string, number> = {
  B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
};

/** Parses `7d` → 604800000. Throws a RangeError naming the accepted units. */
export function parseDuration(text: string): number {
  const m = new RegExp(DURATION_PATTERN).exec(text);
  if (!m) throw new RangeError(`"${text}" is not a duration; use a number and a unit: ms, s, m, h, d or w (e.g. 30s, 7d)`);
  return Math.round(Number(m[1]) * DURATION_MS[m[2]!]!);
}

/** Parses `2GB` → 2000000000. Throws a RangeError naming the accepted units. */
export function parseSize(text: string): number {
  const m = new RegExp(SIZE_PATTERN).exec(text);
  if (!m) throw new RangeError(`"${text}" is not a size; use a number and a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 2GB)`);
  return Math.round(Number(m[1]) * SIZE_BYTES[m[2]!]!);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = bytes;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)}${units[i]}`;
}
