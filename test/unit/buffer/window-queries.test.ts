import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import type { TagWindow } from '../../../src/core/window.js';
import { assembleWindow } from '../../../src/runtime/window-assembly.js';
import { bufferConfig, bufferContext, sample } from './buffer-context.js';

let ctx: ReturnType<typeof bufferContext>;
let buffer: SampleBuffer;

beforeEach(async () => {
  ctx = bufferContext();
  buffer = new SampleBuffer(bufferConfig({ flushIntervalMs: 60_000 }), ctx);
  await buffer.start(new AbortController().signal);
});

afterEach(async () => {
  await buffer.stop();
  ctx.cleanup();
});

/** The buffer's grid window over [from, to] (the one window assembly, on committed samples). */
function grid(tags: string[], from: number, to: number, periodMs: number, maxHoldMs = Number.POSITIVE_INFINITY): TagWindow {
  return assembleWindow(buffer, { tags, samples: Math.floor((to - from) / periodMs) + 1, periodMs, maxHoldMs: tags.map(() => maxHoldMs) }, to);
}

/** Column `tag` of a window as [value|null for invalid]. */
function column(w: TagWindow, tag: string): Array<number | null> {
  const col = w.tags.indexOf(tag);
  return Array.from({ length: w.rows }, (_, r) => (w.valid[r * w.tags.length + col] ? w.values[r * w.tags.length + col]! : null));
}

describe('lastN', () => {
  it('aligns tags from their newest sample and pads short histories with invalid rows', () => {
    ctx.bus.publish([
      sample('a', 1000, 1), sample('a', 2000, 2), sample('a', 3000, 3), sample('a', 4000, 4),
      sample('b', 1500, 10), sample('b', 3500, 20),
    ]);
    buffer.flush();
    const w = buffer.lastN(['a', 'b', 'missing'], 3);
    expect(w.rows).toBe(3);
    expect(w.tags).toEqual(['a', 'b', 'missing']);
    expect(column(w, 'a')).toEqual([2, 3, 4]);
    expect(column(w, 'b')).toEqual([null, 10, 20]);
    expect(column(w, 'missing')).toEqual([null, null, null]);
    // The row time is the newest timestamp among the tags in that row.
    expect(Array.from(w.ts)).toEqual([2000, 3000, 4000]);
    expect(Number.isNaN(w.values[0 * 3 + 1]!)).toBe(true);
  });

  it('marks bad and uncertain quality, strings and NaN invalid; booleans are 0/1', () => {
    ctx.bus.publish([
      sample('x', 1, 1.5),
      sample('x', 2, 99, 'bad', 0x80320000),
      sample('x', 3, 7, 'uncertain'),
      sample('x', 4, 'RUNNING'),
      sample('x', 5, Number.NaN),
      sample('x', 6, true),
      sample('x', 7, false),
    ]);
    buffer.flush();
    expect(column(buffer.lastN(['x'], 7), 'x')).toEqual([1.5, null, null, null, null, 1, 0]);
  });

  it('rejects a non-positive n', () => {
    expect(() => buffer.lastN(['a'], 0)).toThrow(RangeError);
  });

  it('serves 8 tags × 256 samples', () => {
    const tags = Array.from({ length: 8 }, (_, i) => `t${i}`);
    const batch = [];
    for (let k = 0; k < 1000; k++) for (const t of tags) batch.push(sample(t, 1_000_000 + k * 10, k));
    ctx.bus.publish(batch);
    buffer.flush();
    const w = buffer.lastN(tags, 256);
    expect(w.values.length).toBe(8 * 256);
    expect(w.valid.every((v) => v === 1)).toBe(true);
    expect(column(w, 't3')[0]).toBe(744);
    expect(column(w, 't7')[255]).toBe(999);
  });
});

describe('grid windows from the buffer (window assembly over committed samples)', () => {
  it('holds the last value onto the grid, starting from a sample before the range', () => {
    ctx.bus.publish([sample('p', 500, 1), sample('p', 1200, 2), sample('p', 1900, 3)]);
    buffer.flush();
    const w = grid(['p'], 1000, 2000, 250);
    expect(Array.from(w.ts)).toEqual([1000, 1250, 1500, 1750, 2000]);
    expect(column(w, 'p')).toEqual([1, 2, 2, 2, 3]);
  });

  it('marks gaps longer than maxHoldMs invalid', () => {
    ctx.bus.publish([sample('g', 1000, 1), sample('g', 1100, 2), sample('g', 2000, 3)]);
    buffer.flush();
    expect(column(grid(['g'], 1000, 2200, 200, 300), 'g')).toEqual([1, 2, 2, null, null, 3, 3]);
    // Without maxHoldMs the last value is held indefinitely (on-change sources do not repeat a steady value).
    expect(column(grid(['g'], 1000, 2200, 200), 'g')).toEqual([1, 2, 2, 2, 2, 3, 3]);
  });

  it('a bad-quality sample invalidates the grid until the next good one; nothing before the first sample', () => {
    ctx.bus.publish([sample('q', 1100, 5), sample('q', 1300, 6, 'bad'), sample('q', 1500, 7)]);
    buffer.flush();
    expect(column(grid(['q'], 1000, 1600, 100), 'q')).toEqual([null, 5, 5, null, null, 7, 7]);
  });

  it('fills several tags row-major and leaves unknown tags invalid', () => {
    ctx.bus.publish([sample('m', 0, 1), sample('n', 50, 10), sample('m', 100, 2)]);
    buffer.flush();
    const w = grid(['m', 'n', 'zz'], 0, 100, 100);
    expect(Array.from(w.values).map((v) => (Number.isNaN(v) ? null : v))).toEqual([1, null, null, 2, 10, null]);
    expect(Array.from(w.valid)).toEqual([1, 0, 0, 1, 1, 0]);
  });

  it('series: the held sample before the range, then the range; recent: the last n at or before a time', () => {
    ctx.bus.publish([sample('s', 100, 1), sample('s', 200, 2, 'bad'), sample('s', 300, 3), sample('s', 400, 'x')]);
    buffer.flush();
    expect(buffer.series('s', 250, 400)).toEqual([
      { ts: 200, value: Number.NaN, valid: false }, { ts: 300, value: 3, valid: true }, { ts: 400, value: Number.NaN, valid: false },
    ]);
    expect(buffer.recent('s', 2, 350)).toEqual([{ ts: 200, value: Number.NaN, valid: false }, { ts: 300, value: 3, valid: true }]);
    expect(buffer.series('unknown', 0, 10)).toEqual([]);
  });
});
