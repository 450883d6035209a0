import type { SamplePoint, SeriesReader, TagWindow } from '../core/window.js';

/**
 * The one window assembly: how a model's input window is built from tag samples, on source time. Live inference,
 * the buffer's history and any offline tool use this same function, so a window is the same whoever builds it.
 *
 * A window is `samples` frames; each frame holds, per tag, the tag's last value at or before the frame's time
 * (sample and hold: exactly what "report by exception" means — a PLC sends a value when it changes, and the value
 * stands until the next one). A held value counts for at most the tag's `maxHoldMs`; after that, or when the last
 * sample is bad (a source that lost its connection marks its tags bad), the cell is invalid.
 *
 *     frames (periodMs)   t-2P      t-P        t
 *     tag A   ──●─────────────●───────────────────   A changes twice
 *     tag B   ────────●──────────────────────●────   B changes late
 *     tag C   ●───────────────────────────────────   C holds (reported once)
 *     frame t-2P: A₁ B₁ C₁    frame t-P: A₂ B₁ C₁    frame t: A₂ B₂ C₁
 *
 * Frames: with `periodMs`, a grid of source time ending at `end` (end − (n−1)·P, …, end). Without it, the last n
 * distinct sample times of the input tags up to `end` (one frame per MQTT JSON row or Sparkplug DATA message, whose
 * tags share one timestamp).
 */
export interface AssemblyPlan {
  tags: readonly string[];
  samples: number;
  periodMs?: number | undefined;
  /** Per tag, ms. */
  maxHoldMs: readonly number[];
}

/** The frame times of the window that ends at `end`, oldest first (fewer than `samples` when history is short). */
export function frameTimes(reader: SeriesReader, plan: AssemblyPlan, end: number): number[] {
  const n = plan.samples;
  if (plan.periodMs !== undefined) {
    const times: number[] = [];
    for (let r = n - 1; r >= 0; r--) times.push(end - r * plan.periodMs);
    return times;
  }
  const union = new Set<number>();
  for (const tag of plan.tags) for (const p of reader.recent(tag, n, end)) union.add(p.ts);
  return [...union].sort((a, b) => a - b).slice(-n);
}

/** Assembles the window that ends at `end` (source time, epoch ms). */
export function assembleWindow(reader: SeriesReader, plan: AssemblyPlan, end: number): TagWindow {
  const times = frameTimes(reader, plan, end);
  const rows = times.length;
  const width = plan.tags.length;
  const window: TagWindow = {
    tags: [...plan.tags], ts: Float64Array.from(times), values: new Float64Array(rows * width).fill(Number.NaN),
    valid: new Uint8Array(rows * width), rows,
  };
  if (rows === 0) return window;
  plan.tags.forEach((tag, col) => {
    const points: SamplePoint[] = plan.periodMs !== undefined ? reader.series(tag, times[0]!, end) : reader.recent(tag, plan.samples, end);
    const hold = plan.maxHoldMs[col] ?? Number.POSITIVE_INFINITY;
    let j = -1;
    for (let r = 0; r < rows; r++) {
      const t = times[r]!;
      while (j + 1 < points.length && points[j + 1]!.ts <= t) j++;
      if (j < 0) continue;
      const p = points[j]!;
      if (p.valid && t - p.ts <= hold) {
        const cell = r * width + col;
        window.values[cell] = p.value;
        window.valid[cell] = 1;
      }
    }
  });
  return window;
}
