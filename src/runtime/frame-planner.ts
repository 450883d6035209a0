import type { SourceClockView } from '../core/source-clock.js';
import type { RecentSamples } from './recent-samples.js';

export interface FramePlannerOptions {
  tags: readonly string[];
  periodMs?: number | undefined;
  latenessMs: number;
  /** Windows evaluated per call at most; older pending ones are skipped (counted) to catch up. */
  maxPerStep: number;
  /** A watermark this far behind the last evaluated window means the source clock went back (a step while we were away). */
  backJumpMs: number;
}

/** The window ends to evaluate now, and what was skipped to catch up. */
export interface PlannedEnds {
  ends: number[];
  /** Ends that were due but skipped because more than maxPerStep were pending. */
  skipped: number;
  /** The watermark went back behind the last evaluated window: the planner restarted on the new timeline. */
  timelineRestarted: boolean;
}

/**
 * Decides which windows a model evaluates, on source time. The grid advances with the sources' time, never with
 * the gateway's wall clock: a window ending at `t` is evaluated once the watermark — the least advanced of the
 * model's sources (their newest sample time plus the monotonic time since it arrived), minus the allowed
 * lateness — has passed `t`, or once every input tag has a sample past `t`. Each window is evaluated once, in
 * order (`lastEnd` only grows), so alert rules see a deterministic sequence and a restart resumes after the last
 * window it evaluated, never before.
 */
export class FramePlanner {
  #lastEnd = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly o: FramePlannerOptions,
    private readonly memory: RecentSamples,
    private readonly clocks: SourceClockView | undefined,
  ) {}

  /** Source time of the last window evaluated (or restored after a restart). */
  get lastEnd(): number {
    return this.#lastEnd;
  }

  /** After a restart: windows ending at or before `end` were evaluated by the previous run. */
  restore(end: number): void {
    if (Number.isFinite(end) && end > this.#lastEnd) this.#lastEnd = end;
  }

  /** A clock step: the next window is the newest one on the new timeline. */
  reset(): void {
    this.#lastEnd = Number.NEGATIVE_INFINITY;
  }

  markEvaluated(end: number): void {
    if (end > this.#lastEnd) this.#lastEnd = end;
  }

  /** The ready limit: windows ending at or before it can be assembled now (undefined: no data yet). */
  readyUntil(monoNow?: number): number | undefined {
    let minNewest = Number.POSITIVE_INFINITY;
    for (const tag of this.o.tags) {
      const newest = this.memory.newest(tag);
      if (newest === undefined) {
        minNewest = Number.NEGATIVE_INFINITY;
        break;
      }
      if (newest < minNewest) minNewest = newest;
    }
    let watermark = Number.POSITIVE_INFINITY;
    const sources = this.memory.sources();
    for (const source of sources) {
      const now = this.clocks?.sourceNow(source, monoNow);
      if (now !== undefined && now < watermark) watermark = now;
    }
    if (sources.size === 0 || !Number.isFinite(watermark)) {
      // No clock view (a test harness): the sources' newest sample times are the watermark.
      watermark = Number.NEGATIVE_INFINITY;
      for (const tag of this.o.tags) watermark = Math.max(watermark, this.memory.newest(tag) ?? Number.NEGATIVE_INFINITY);
    }
    const limit = Math.max(minNewest, watermark - this.o.latenessMs);
    return Number.isFinite(limit) ? limit : undefined;
  }

  /** The windows to evaluate now, oldest first. */
  next(monoNow?: number): PlannedEnds {
    const limit = this.readyUntil(monoNow);
    if (limit === undefined) return { ends: [], skipped: 0, timelineRestarted: false };
    let timelineRestarted = false;
    if (Number.isFinite(this.#lastEnd) && limit < this.#lastEnd - this.o.backJumpMs) {
      this.#lastEnd = Number.NEGATIVE_INFINITY;
      timelineRestarted = true;
    }
    const P = this.o.periodMs;
    let due: number[];
    if (P !== undefined) {
      const last = Math.floor(limit / P) * P;
      if (!Number.isFinite(this.#lastEnd)) due = [last];
      else {
        const first = Math.floor(this.#lastEnd / P) * P + P;
        const count = first > last ? 0 : Math.floor((last - first) / P) + 1;
        const take = Math.min(count, this.o.maxPerStep);
        due = [];
        for (let k = count - take; k < count; k++) due.push(first + k * P);
        return { ends: due, skipped: count - take, timelineRestarted };
      }
    } else {
      const times = this.memory.distinctTimes(this.#lastEnd, limit);
      due = Number.isFinite(this.#lastEnd) ? times : times.slice(-1);
    }
    const skipped = Math.max(0, due.length - this.o.maxPerStep);
    return { ends: skipped > 0 ? due.slice(skipped) : due, skipped, timelineRestarted };
  }
}
