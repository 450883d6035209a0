import type { TagSample } from '../core/tag-sample.js';
import type { SamplePoint, SeriesReader } from '../core/window.js';

/** Points kept per tag at most, whatever the window needs (a flood must not exhaust memory). */
const MAX_POINTS_PER_TAG = 200_000;
/** The buffer drops samples whose timestamp is not finite or beyond what a JavaScript date holds; so does this. */
const MAX_TIMESTAMP_MS = 8.64e15;

/**
 * The runtime's memory of the recent samples of a model's input tags, in source time, as the buffer stores them:
 * timestamps rounded to whole milliseconds, one point per (tag, ms) — a later arrival with the same timestamp
 * replaces the earlier one, as `INSERT OR IGNORE` + update does in SQLite — and bad/uncertain quality, strings and
 * NaN as invalid points. So for the same samples it gives the same series as the buffer (tested).
 *
 * Samples arrive on the bus before the buffer commits them (every `flushIntervalMs`): windows are read from here,
 * and from the buffer only for history older than what memory holds (just after a start).
 */
export class RecentSamples implements SeriesReader {
  readonly #points = new Map<string, SamplePoint[]>();
  readonly #sourceOf = new Map<string, string>();
  /** Tags whose history before memory must not be read from the buffer (after a clock step of their source). */
  readonly #memoryOnly = new Set<string>();

  constructor(tags: readonly string[]) {
    for (const tag of tags) this.#points.set(tag, []);
  }

  /** Bus listener: records the samples of the watched tags. */
  add(samples: readonly TagSample[]): void {
    for (const sample of samples) {
      if (typeof sample !== 'object' || sample === null) continue;
      const points = this.#points.get(sample.tag);
      if (!points || typeof sample.ts !== 'number' || !(Math.abs(sample.ts) <= MAX_TIMESTAMP_MS)) continue;
      if (typeof sample.source === 'string') this.#sourceOf.set(sample.tag, sample.source);
      insert(points, toPoint(sample));
      if (points.length > MAX_POINTS_PER_TAG) points.splice(0, points.length - MAX_POINTS_PER_TAG);
    }
  }

  /** The source a tag's samples came from, once one arrived. */
  sourceOf(tag: string): string | undefined {
    return this.#sourceOf.get(tag);
  }

  /** Sources of the watched tags seen so far. */
  sources(): Set<string> {
    return new Set(this.#sourceOf.values());
  }

  newest(tag: string): number | undefined {
    const points = this.#points.get(tag);
    return points && points.length > 0 ? points[points.length - 1]!.ts : undefined;
  }

  /** True when memory alone gives the series of `tag` from `fromMs` on (it holds the value held at fromMs). */
  covers(tag: string, fromMs: number): boolean {
    if (this.#memoryOnly.has(tag)) return true;
    const points = this.#points.get(tag);
    return points !== undefined && points.length > 0 && points[0]!.ts <= fromMs;
  }

  series(tag: string, fromMs: number, toMs: number): SamplePoint[] {
    const points = this.#points.get(tag) ?? [];
    let first = upperBound(points, fromMs) - 1; // last point ≤ fromMs
    if (first < 0) first = 0;
    const end = upperBound(points, toMs);
    return points.slice(first, end);
  }

  recent(tag: string, n: number, toMs: number): SamplePoint[] {
    const points = this.#points.get(tag) ?? [];
    const end = upperBound(points, toMs);
    return points.slice(Math.max(0, end - n), end);
  }

  /** The distinct sample times of the watched tags with afterMs < ts ≤ toMs, ascending (frames of an event window). */
  distinctTimes(afterMs: number, toMs: number): number[] {
    const times = new Set<number>();
    for (const points of this.#points.values()) {
      for (let i = upperBound(points, afterMs); i < points.length && points[i]!.ts <= toMs; i++) times.add(points[i]!.ts);
    }
    return [...times].sort((a, b) => a - b);
  }

  /** Forgets points older than `keepFromMs`, except each tag's last one before it (the value held then). */
  prune(keepFromMs: number): void {
    for (const points of this.#points.values()) {
      const cut = upperBound(points, keepFromMs) - 1;
      if (cut > 0) points.splice(0, cut);
    }
  }

  /**
   * A clock step of `source`: its tags' history is on another timeline. Each tag keeps only its newest value,
   * restamped to `newTs` (a value held before the step is still the value after it: report by exception sends
   * nothing new), and the buffer's history of these tags is not read any more (it mixes the two timelines).
   */
  restartTimeline(source: string, newTs: number): void {
    // Called from the clock stage, before the batch that showed the step reaches this memory: every point here is
    // on the old timeline.
    for (const [tag, points] of this.#points) {
      if (this.#sourceOf.get(tag) !== source) continue;
      this.#memoryOnly.add(tag);
      const held = points[points.length - 1];
      points.length = 0;
      if (held) points.push({ ts: newTs, value: held.value, valid: held.valid });
    }
  }
}

function toPoint(sample: TagSample): SamplePoint {
  const v = sample.value;
  const numeric = typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' ? v : Number.NaN;
  const valid = sample.quality === 'good' && !Number.isNaN(numeric);
  return { ts: Number.isInteger(sample.ts) ? sample.ts : Math.round(sample.ts), value: valid ? numeric : Number.NaN, valid };
}

/** Inserts in ts order; an equal timestamp replaces the point (the newest arrival wins, as in the buffer). */
function insert(points: SamplePoint[], point: SamplePoint): void {
  const last = points[points.length - 1];
  if (!last || last.ts < point.ts) {
    points.push(point);
    return;
  }
  const at = upperBound(points, point.ts - 1);
  if (points[at]?.ts === point.ts) points[at] = point;
  else points.splice(at, 0, point);
}

/** Index of the first point with ts > t. */
function upperBound(points: readonly SamplePoint[], t: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]!.ts <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
