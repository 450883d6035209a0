import { describe, expect, it } from 'vitest';
import type { TagWindow } from '../../../src/core/window.js';
import { assembleFeatures, recentInputs } from '../../../src/runtime/feature-assembly.js';

/** A window from rows of [ts, ...values]; null = invalid cell. */
function windowOf(tags: string[], rows: Array<[number, ...(number | null)[]]>): TagWindow {
  const w = tags.length;
  const values = new Float64Array(rows.length * w).fill(Number.NaN);
  const valid = new Uint8Array(rows.length * w);
  const ts = new Float64Array(rows.length);
  rows.forEach(([t, ...cells], r) => {
    ts[r] = t;
    cells.forEach((v, c) => {
      if (v !== null) {
        values[r * w + c] = v;
        valid[r * w + c] = 1;
      }
    });
  });
  return { tags, ts, values, valid, rows: rows.length };
}

const plan = { tags: ['a', 'b'], samples: 3, maxInvalidFraction: 0 };

describe('assembleFeatures', () => {
  it('lays rows out row-major as float32 and reports the newest timestamp', () => {
    const result = assembleFeatures(windowOf(['a', 'b'], [[10, 1, 2], [20, 3, 4], [30, 5, 6]]), plan);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(Array.from(result.input)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.input).toBeInstanceOf(Float32Array);
    expect(result.newestTs).toBe(30);
    expect(result.invalidCells).toBe(0);
  });

  it('z-scores each feature with the model mean/std', () => {
    const normalisation = { mean: Float64Array.of(0, 10), std: Float64Array.of(1, 2) };
    const result = assembleFeatures(windowOf(['a', 'b'], [[1, 1, 12], [2, 2, 14], [3, 3, 8]]), { ...plan, normalisation });
    expect(result.ok && Array.from(result.input)).toEqual([1, 1, 2, 2, 3, -1]);
  });

  it('skips when any cell is invalid and maxInvalidFraction is 0', () => {
    const result = assembleFeatures(windowOf(['a', 'b'], [[1, 1, 2], [2, null, 4], [3, 5, 6]]), plan);
    expect(result).toMatchObject({ ok: false, reason: 'too_many_invalid', detail: expect.stringContaining('1 of 6 window cells') });
  });

  it('fills allowed gaps with the previous good value of the tag (the next one at the start)', () => {
    const result = assembleFeatures(
      windowOf(['a', 'b'], [[1, null, 2], [2, 3, null], [3, null, 6]]),
      { ...plan, maxInvalidFraction: 0.5 },
    );
    expect(result.ok && Array.from(result.input)).toEqual([3, 2, 3, 2, 3, 6]);
    expect(result.ok && result.invalidCells).toBe(3);
  });

  it('treats non-finite values as invalid', () => {
    const w = windowOf(['a', 'b'], [[1, 1, 2], [2, 3, 4], [3, 5, 6]]);
    w.values[2] = Number.POSITIVE_INFINITY;
    const result = assembleFeatures(w, { ...plan, maxInvalidFraction: 0.2 });
    expect(result.ok && Array.from(result.input)).toEqual([1, 2, 1, 4, 5, 6]);
  });

  it('treats values beyond the float32 range as invalid: they would reach the model as Infinity', () => {
    const result = assembleFeatures(windowOf(['a', 'b'], [[1, 1, 2], [2, 1e39, 4], [3, 5, -1e300]]), { ...plan, maxInvalidFraction: 0.5 });
    expect(result.ok && Array.from(result.input)).toEqual([1, 2, 1, 4, 5, 4]);
    expect(result.ok && result.invalidCells).toBe(2);
  });

  it('skips a tag with no good sample in the window, naming it', () => {
    const result = assembleFeatures(windowOf(['a', 'b'], [[1, 1, null], [2, 3, null], [3, 5, null]]), { ...plan, maxInvalidFraction: 1 });
    expect(result).toEqual({ ok: false, reason: 'tag_without_data', detail: 'tag b has no good sample in the window' });
  });

  it('skips a window with too few rows', () => {
    expect(assembleFeatures(windowOf(['a', 'b'], [[1, 1, 2]]), plan)).toMatchObject({ ok: false, reason: 'no_data' });
  });

  it('gives the same fingerprint for the same window and a different one when a sample arrives', () => {
    const one = assembleFeatures(windowOf(['a', 'b'], [[1, 1, 2], [2, 3, 4], [3, 5, 6]]), plan);
    const same = assembleFeatures(windowOf(['a', 'b'], [[1, 1, 2], [2, 3, 4], [3, 5, 6]]), plan);
    const newer = assembleFeatures(windowOf(['a', 'b'], [[2, 3, 4], [3, 5, 6], [4, 5, 6]]), plan);
    expect(one.ok && same.ok && one.fingerprint === same.fingerprint).toBe(true);
    expect(one.ok && newer.ok && one.fingerprint !== newer.fingerprint).toBe(true);
  });
});

describe('recentInputs', () => {
  it('gives the newest n rows per tag, oldest first, invalid as null', () => {
    const w = windowOf(['a', 'b'], [[1, 1, 2], [2, null, 4], [3, 5, 6]]);
    expect(recentInputs(w, 2)).toEqual({ a: [[2, null], [3, 5]], b: [[2, 4], [3, 6]] });
    expect(recentInputs(w, 10).a).toHaveLength(3);
    expect(recentInputs(w, 0)).toEqual({ a: [], b: [] });
  });
});
