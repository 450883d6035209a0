import type { TagSample } from '../core/tag-sample.js';
import type { TagWindow, WindowReader } from '../core/window.js';

/** A sample as a model input: value NaN and valid false for bad/uncertain quality, strings and NaN (as the buffer does). */
interface Point {
  ts: number;
  value: number;
  valid: boolean;
}

/** Samples of one tag older than this behind its newest are never needed from memory: the buffer has them by then. */
const MAX_AGE_MS = 60_000;

/** The buffer drops samples whose timestamp is not finite or beyond what a JavaScript date holds; so does this. */
const MAX_TIMESTAMP_MS = 8.64e15;

/**
 * The buffer's windows plus the samples it has not committed yet.
 *
 * The buffer commits in batches (every `buffer.flushIntervalMs`) and its window queries see committed samples
 * only, so a model triggered by new data would otherwise run on a window that lacks the very samples that
 * triggered it. This reader keeps, per input tag, the recent samples seen on the bus and merges those newer than
 * the tag's newest committed sample into each window; when memory alone holds the whole last-N window it is
 * served from memory. The buffer stays the source of history (after a restart the model has a full window at
 * once); memory holds at most `keep` samples and `MAX_AGE_MS` per tag. Values follow the buffer's rules: booleans
 * as 0/1, strings, NaN and bad or uncertain quality as invalid, samples without a usable timestamp ignored.
 */
export class FreshWindowReader implements WindowReader {
  readonly #recent = new Map<string, Point[]>();

  constructor(
    private readonly inner: WindowReader,
    tags: readonly string[],
    private readonly keep: number,
  ) {
    for (const tag of tags) this.#recent.set(tag, []);
  }

  /** Bus listener: records the samples of the watched tags. */
  add(samples: readonly TagSample[]): void {
    for (const sample of samples) {
      const points = this.#recent.get(sample.tag);
      // A NaN timestamp would sort before everything and stop both the pruning and the merge of fresher samples.
      if (!points || !(Math.abs(sample.ts) <= MAX_TIMESTAMP_MS)) continue;
      const numeric = typeof sample.value === 'boolean' ? (sample.value ? 1 : 0) : typeof sample.value === 'number' ? sample.value : Number.NaN;
      const valid = sample.quality === 'good' && !Number.isNaN(numeric);
      const point = { ts: sample.ts, value: valid ? numeric : Number.NaN, valid };
      const last = points[points.length - 1];
      if (!last || last.ts < sample.ts) points.push(point);
      else insertSorted(points, point);
      const newest = points[points.length - 1]!.ts;
      let drop = Math.max(0, points.length - this.keep);
      while (drop < points.length && points[drop]!.ts < newest - MAX_AGE_MS) drop++;
      if (drop > 0) points.splice(0, drop);
    }
  }

  lastN(tags: readonly string[], n: number): TagWindow {
    const window = emptyWindow(tags, n);
    window.ts.fill(Number.NaN);
    const width = tags.length;
    tags.forEach((tag, col) => {
      const take = this.#lastOf(tag, n);
      take.forEach((point, k) => {
        const r = n - take.length + k;
        const cell = r * width + col;
        if (point.valid) {
          window.values[cell] = point.value;
          window.valid[cell] = 1;
        }
        const t = window.ts[r]!;
        if (Number.isNaN(t) || point.ts > t) window.ts[r] = point.ts;
      });
    });
    return window;
  }

  /**
   * The newest `n` samples of one tag. Every sample the buffer stores came over the bus, so when memory holds at
   * least `n` of them they are the newest `n` and no query is needed (the common case once running); otherwise
   * (just after a start) the committed ones come from the buffer.
   */
  #lastOf(tag: string, n: number): Point[] {
    const recent = this.#recent.get(tag) ?? [];
    if (recent.length >= n) return recent.slice(-n);
    const committed = this.inner.lastN([tag], n);
    const series: Point[] = [];
    for (let r = 0; r < committed.rows; r++) {
      const ts = committed.ts[r]!;
      if (!Number.isNaN(ts)) series.push({ ts, value: committed.values[r]!, valid: committed.valid[r] === 1 });
    }
    const newestCommitted = series.length > 0 ? series[series.length - 1]!.ts : Number.NEGATIVE_INFINITY;
    series.push(...this.#fresh(tag, newestCommitted));
    return series.slice(-n);
  }

  resampled(tags: readonly string[], fromMs: number, toMs: number, periodMs: number, maxHoldMs = Number.POSITIVE_INFINITY): TagWindow {
    const window = this.inner.resampled(tags, fromMs, toMs, periodMs, maxHoldMs);
    const width = tags.length;
    tags.forEach((tag, col) => {
      const newest = this.inner.lastN([tag], 1);
      const newestCommitted = Number.isNaN(newest.ts[0]!) ? Number.NEGATIVE_INFINITY : newest.ts[0]!;
      const fresh = this.#fresh(tag, newestCommitted);
      let j = -1;
      for (let r = 0; r < window.rows; r++) {
        const t = window.ts[r]!;
        while (j + 1 < fresh.length && fresh[j + 1]!.ts <= t) j++;
        if (j < 0) continue;
        // A fresh sample at or before t is newer than anything committed: it is the value held at t.
        const point = fresh[j]!;
        const cell = r * width + col;
        const valid = point.valid && t - point.ts <= maxHoldMs;
        window.values[cell] = valid ? point.value : Number.NaN;
        window.valid[cell] = valid ? 1 : 0;
      }
    });
    return window;
  }

  /** Samples of `tag` newer than its newest committed one; the older ones are dropped (the buffer has them). */
  #fresh(tag: string, newestCommitted: number): Point[] {
    const points = this.#recent.get(tag);
    if (!points) return [];
    let first = 0;
    while (first < points.length && points[first]!.ts <= newestCommitted) first++;
    if (first > 0) points.splice(0, first);
    return points.slice();
  }
}

function insertSorted(points: Point[], point: Point): void {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]!.ts < point.ts) lo = mid + 1;
    else hi = mid;
  }
  if (points[lo]?.ts === point.ts) points[lo] = point;
  else points.splice(lo, 0, point);
}

function emptyWindow(tags: readonly string[], rows: number): TagWindow {
  const cells = rows * tags.length;
  return { tags: [...tags], ts: new Float64Array(rows), values: new Float64Array(cells).fill(Number.NaN), valid: new Uint8Array(cells), rows };
}
