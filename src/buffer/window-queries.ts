import type { Database, Statement } from 'better-sqlite3';
import type { SamplePoint, SeriesReader, TagWindow, WindowReader } from '../core/window.js';
import { KIND, QUALITY } from './sample-writer.js';
import type { TagRegistry } from './tag-registry.js';

/** [ts, value, quality, kind] as read with `.raw()`. */
type RawRow = [number, number | null, number, number];

/** A sample is usable as a model input when it is good, numeric (or boolean) and not NaN (stored as NULL). */
function usable(row: RawRow): boolean {
  return row[2] === QUALITY.good && row[3] !== KIND.string && row[1] !== null;
}

/**
 * Window queries over the samples table. Each is one index range scan per tag on the (tag_id, ts) primary key,
 * read as raw arrays; the assembly into row-major Float64Arrays is a single pass.
 *
 * Only committed samples are seen: the newest `flushIntervalMs` of samples may not be there yet.
 * Valid (1) means a good-quality numeric or boolean value; uncertain and bad quality, strings, NaN and gaps are
 * invalid (0, value NaN).
 */
export class WindowQueries implements WindowReader, SeriesReader {
  readonly #tags: TagRegistry;
  readonly #lastN: Statement<[number, number]>;
  readonly #before: Statement<[number, number]>;
  readonly #range: Statement<[number, number, number]>;
  readonly #lastBefore: Statement<[number, number, number]>;

  constructor(db: Database, tags: TagRegistry) {
    this.#tags = tags;
    this.#lastN = db.prepare('SELECT ts, value, quality, kind FROM samples WHERE tag_id = ? ORDER BY ts DESC LIMIT ?').raw(true);
    this.#before = db
      .prepare('SELECT ts, value, quality, kind FROM samples WHERE tag_id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1')
      .raw(true);
    this.#range = db
      .prepare('SELECT ts, value, quality, kind FROM samples WHERE tag_id = ? AND ts > ? AND ts <= ? ORDER BY ts')
      .raw(true);
    this.#lastBefore = db
      .prepare('SELECT ts, value, quality, kind FROM samples WHERE tag_id = ? AND ts <= ? ORDER BY ts DESC LIMIT ?')
      .raw(true);
  }

  series(tag: string, fromMs: number, toMs: number): SamplePoint[] {
    const id = this.#tags.id(tag);
    if (id === undefined || !(toMs >= fromMs)) return [];
    const held = this.#before.get(id, Math.floor(fromMs)) as RawRow | undefined;
    const rows = this.#range.all(id, Math.floor(fromMs), Math.floor(toMs)) as RawRow[];
    const points = held ? [point(held)] : [];
    for (const row of rows) points.push(point(row));
    return points;
  }

  recent(tag: string, n: number, toMs: number): SamplePoint[] {
    const id = this.#tags.id(tag);
    if (id === undefined || !(n >= 1)) return [];
    const rows = this.#lastBefore.all(id, Math.floor(toMs), Math.floor(n)) as RawRow[];
    return rows.reverse().map(point);
  }

  /**
   * The last `n` samples of each tag, aligned from the newest (row n-1 holds every tag's newest sample). `ts` of a
   * row is the newest timestamp among the tags in that row (NaN where no tag has a sample).
   */
  lastN(tags: readonly string[], n: number): TagWindow {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`lastN: n must be a positive integer, got ${n}`);
    const window = emptyWindow(tags, n);
    const width = tags.length;
    window.ts.fill(Number.NaN);
    tags.forEach((tag, col) => {
      const id = this.#tags.id(tag);
      if (id === undefined) return;
      const rows = this.#lastN.all(id, n) as RawRow[];
      // rows are newest first: the k-th newest goes to row n-1-k.
      for (let k = 0; k < rows.length; k++) {
        const row = rows[k]!;
        const r = n - 1 - k;
        const cell = r * width + col;
        if (usable(row)) {
          window.values[cell] = row[1]!;
          window.valid[cell] = 1;
        }
        const t = window.ts[r]!;
        if (Number.isNaN(t) || row[0] > t) window.ts[r] = row[0];
      }
    });
    return window;
  }


}

function point(row: RawRow): SamplePoint {
  const valid = usable(row);
  return { ts: row[0], value: valid ? row[1]! : Number.NaN, valid };
}

function emptyWindow(tags: readonly string[], rows: number): TagWindow {
  const cells = rows * tags.length;
  return {
    tags: [...tags],
    ts: new Float64Array(rows),
    values: new Float64Array(cells).fill(Number.NaN),
    valid: new Uint8Array(cells),
    rows,
  };
}
