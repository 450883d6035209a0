import type { TagWindow } from '../core/window.js';

/**
 * Turns a window read from the buffer into the model's input tensor.
 *
 * Missing and bad-quality policy (stated in the config description of `window.maxInvalidFraction`):
 * - a cell is invalid when the buffer marks it so (gap, bad quality, a value held too long) or it is not finite as
 *   a float32 (a garbage reading of 1e39 would reach the model as Infinity and make its output NaN);
 * - a tag with no valid cell in the window skips the inference (`tag_without_data`): there is nothing to fill from;
 * - more than `maxInvalidFraction` invalid cells skips it too (`too_many_invalid`);
 * - otherwise each invalid cell takes the previous valid value of its tag (the first valid value for cells at the
 *   start of the window), so the model sees a plausible held signal rather than a zero that looks like a reading.
 * Normalisation, when the model has it, is (x − mean) / std per feature, after filling.
 */
export interface FeaturePlan {
  tags: readonly string[];
  samples: number;
  normalisation?: { mean: Float64Array; std: Float64Array } | undefined;
  maxInvalidFraction: number;
}

export type SkipReason = 'no_data' | 'tag_without_data' | 'too_many_invalid';

export type Assembly =
  | {
      ok: true;
      /** rows × tags, row-major, float32: what the model is fed. */
      input: Float32Array;
      /** Timestamp of the newest row, epoch ms. */
      newestTs: number;
      invalidCells: number;
      /** Identifies the window content: equal fingerprints mean no new data since the last inference. */
      fingerprint: string;
    }
  | { ok: false; reason: SkipReason; detail: string };

/** The largest finite float32: the model input is float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

export function assembleFeatures(window: TagWindow, plan: FeaturePlan): Assembly {
  const width = plan.tags.length;
  const rows = window.rows;
  if (rows < plan.samples || window.tags.length !== width) {
    return { ok: false, reason: 'no_data', detail: `the window has ${rows} of ${plan.samples} rows` };
  }
  // The newest `samples` rows, should the reader return more.
  const first = rows - plan.samples;
  // Filled and normalised in float64, rounded to float32 once at the end: rounding raw values (e.g. 1589.7) to
  // float32 before subtracting the mean costs digits the model was trained with.
  const input = new Float64Array(plan.samples * width);
  let invalid = 0;
  for (let t = 0; t < width; t++) {
    let held = Number.NaN;
    let missing = 0;
    let leading = 0;
    for (let r = 0; r < plan.samples; r++) {
      const at = (first + r) * width + t;
      const value = window.values[at]!;
      if (window.valid[at] === 1 && Math.abs(value) <= FLOAT32_MAX) {
        if (Number.isNaN(held)) for (let back = r - leading; back < r; back++) input[back * width + t] = value;
        held = value;
        leading = 0;
        input[r * width + t] = value;
      } else {
        missing++;
        if (Number.isNaN(held)) leading++;
        else input[r * width + t] = held;
      }
    }
    if (Number.isNaN(held)) {
      return { ok: false, reason: 'tag_without_data', detail: `tag ${plan.tags[t]} has no good sample in the window` };
    }
    invalid += missing;
  }
  const cells = plan.samples * width;
  if (invalid / cells > plan.maxInvalidFraction) {
    return {
      ok: false, reason: 'too_many_invalid',
      detail: `${invalid} of ${cells} window cells are missing or bad (window.maxInvalidFraction ${plan.maxInvalidFraction})`,
    };
  }
  const norm = plan.normalisation;
  if (norm) {
    for (let i = 0; i < input.length; i++) {
      const t = i % width;
      input[i] = (input[i]! - norm.mean[t]!) / norm.std[t]!;
    }
  }
  let newestTs = Number.NEGATIVE_INFINITY;
  for (let r = first; r < rows; r++) if (window.ts[r]! > newestTs) newestTs = window.ts[r]!;
  const lastRow = Array.from(window.values.subarray((rows - 1) * width, rows * width)).join(',');
  const lastValid = Array.from(window.valid.subarray((rows - 1) * width, rows * width)).join('');
  return {
    ok: true, input: Float32Array.from(input), newestTs, invalidCells: invalid,
    fingerprint: `${window.ts[first]}|${newestTs}|${invalid}|${lastValid}|${lastRow}`,
  };
}

/** The newest `n` rows of each tag as [ts, value] pairs, oldest first; invalid cells as null (what alerts carry). */
export function recentInputs(window: TagWindow, n: number): Record<string, Array<[number, number | null]>> {
  const out: Record<string, Array<[number, number | null]>> = {};
  const width = window.tags.length;
  const from = Math.max(0, window.rows - n);
  window.tags.forEach((tag, t) => {
    const series: Array<[number, number | null]> = [];
    for (let r = from; r < window.rows; r++) {
      const at = r * width + t;
      const value = window.values[at]!;
      series.push([window.ts[r]!, window.valid[at] === 1 && Number.isFinite(value) ? value : null]);
    }
    out[tag] = series;
  });
  return out;
}
