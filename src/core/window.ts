/**
 * Windows of recent history, read from the buffer by the model runtime.
 * Values are row-major [time][tag]; a missing or bad-quality value is NaN with `valid` = 0.
 */
export interface TagWindow {
  tags: readonly string[];
  /** Timestamps of the rows, epoch ms, oldest first. */
  ts: Float64Array;
  /** rows × tags.length values, row-major. */
  values: Float64Array;
  /** rows × tags.length: 1 = a good sample (or a value held from one), 0 = gap or bad quality. */
  valid: Uint8Array;
  rows: number;
}

export interface WindowReader {
  /**
   * The last `n` samples of each tag, aligned by index from the newest (row n-1 = each tag's newest sample).
   * Tags with fewer than n samples are padded at the start with invalid rows.
   */
  lastN(tags: readonly string[], n: number): TagWindow;
}

/** One stored sample as a model input: `valid` is false for bad/uncertain quality, strings and NaN (value NaN then). */
export interface SamplePoint {
  ts: number;
  value: number;
  valid: boolean;
}

/**
 * Per-tag sample history in source time, as window assembly reads it (src/runtime/window-assembly.ts). Implemented by
 * the SQLite buffer (committed samples) and by the runtime's memory of recent samples; for the same samples both
 * give the same points, so a window assembled from either is the same window.
 */
export interface SeriesReader {
  /**
   * The samples of `tag` with fromMs < ts ≤ toMs, oldest first, preceded by the last sample at or before fromMs
   * (the value held at fromMs), when there is one.
   */
  series(tag: string, fromMs: number, toMs: number): SamplePoint[];
  /** The last `n` samples of `tag` with ts ≤ toMs, oldest first. */
  recent(tag: string, n: number, toMs: number): SamplePoint[];
}
