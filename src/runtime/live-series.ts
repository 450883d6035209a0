import type { SamplePoint, SeriesReader } from '../core/window.js';
import type { RecentSamples } from './recent-samples.js';

/**
 * The series live inference reads: memory (every sample since the model started, including those the buffer has
 * not committed yet) and, for older history, the buffer. When memory holds the value held at the start of the
 * range it alone is read (the steady state: no query); otherwise the buffer's committed points and memory's points
 * are merged, memory winning on equal timestamps (it has the newest arrival).
 */
export class LiveSeries implements SeriesReader {
  constructor(
    private readonly memory: RecentSamples,
    private readonly buffer: SeriesReader | undefined,
  ) {}

  series(tag: string, fromMs: number, toMs: number): SamplePoint[] {
    if (!this.buffer || this.memory.covers(tag, fromMs)) return this.memory.series(tag, fromMs, toMs);
    return merge(this.buffer.series(tag, fromMs, toMs), this.memory.series(tag, fromMs, toMs), fromMs);
  }

  recent(tag: string, n: number, toMs: number): SamplePoint[] {
    const fromMemory = this.memory.recent(tag, n, toMs);
    if (!this.buffer || fromMemory.length >= n || this.memory.covers(tag, Number.NEGATIVE_INFINITY)) return fromMemory;
    return merge(this.buffer.recent(tag, n, toMs), fromMemory, Number.NEGATIVE_INFINITY).slice(-n);
  }
}

/** Both sorted by ts; equal ts: `b` wins. Keeps only one point at or before `fromMs` (the held one). */
function merge(a: SamplePoint[], b: SamplePoint[], fromMs: number): SamplePoint[] {
  const out: SamplePoint[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const pa = a[i];
    const pb = b[j];
    if (pb === undefined || (pa !== undefined && pa.ts < pb.ts)) {
      out.push(pa!);
      i++;
    } else {
      if (pa !== undefined && pa.ts === pb.ts) i++;
      out.push(pb);
      j++;
    }
  }
  let firstKept = 0;
  while (firstKept + 1 < out.length && out[firstKept + 1]!.ts <= fromMs) firstKept++;
  return firstKept > 0 ? out.slice(firstKept) : out;
}
