/**
 * The record of what a model computed: every inference, and every window that was not inferred with the reason.
 * The runtime writes it (through the interface below); the buffer keeps it in SQLite beside the samples, pruned
 * like them; `lineguard outputs` reads it.
 */
export interface InferenceRow {
  model: string;
  /** Source time of the window's end (the newest frame), epoch ms. */
  ts: number;
  /** Gateway wall-clock time it ran, epoch ms. */
  at: number;
  /** Model version (`<metadata version>+<sha256 prefix>`), when a model was loaded. */
  version?: string;
  /** Every output: a number for a one-element output, else the array of its elements. */
  outputs?: Record<string, number | number[]>;
  /** Why no inference ran for this window (`too_many_invalid`, `output_not_finite`, ...). */
  skipped?: string;
  detail?: string;
}

export interface InferenceRecorder {
  /** Queues one row; it is committed with the next batch. Never throws. */
  record(row: InferenceRow): void;
}
