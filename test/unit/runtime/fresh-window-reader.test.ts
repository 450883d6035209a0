import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferConfigSchema, type BufferConfig } from '../../../src/buffer/config.js';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import type { TagWindow } from '../../../src/core/window.js';
import { FreshWindowReader } from '../../../src/runtime/fresh-window-reader.js';
import { runtimeContext, sample } from './runtime-context.js';

let ctx: ReturnType<typeof runtimeContext>;
let buffer: SampleBuffer;
let reader: FreshWindowReader;

/** Rows as [ts, ...values] with null for invalid cells. */
function rows(w: TagWindow): Array<Array<number | null>> {
  const out: Array<Array<number | null>> = [];
  for (let r = 0; r < w.rows; r++) {
    const row: Array<number | null> = [Number.isNaN(w.ts[r]!) ? null : w.ts[r]!];
    for (let c = 0; c < w.tags.length; c++) row.push(w.valid[r * w.tags.length + c] ? w.values[r * w.tags.length + c]! : null);
    out.push(row);
  }
  return out;
}

beforeEach(async () => {
  ctx = runtimeContext();
  // Commits only when the test calls flush(): the "not yet committed" state lasts as long as the test needs.
  const cfg = Value.Default(BufferConfigSchema, { flushIntervalMs: 60_000 }) as BufferConfig;
  buffer = new SampleBuffer(cfg, ctx);
  await buffer.start(new AbortController().signal);
  reader = new FreshWindowReader(buffer, ['a', 'b'], 100);
  ctx.bus.subscribe((s) => reader.add(s));
});

afterEach(async () => {
  await buffer.stop();
  ctx.cleanup();
});

describe('FreshWindowReader over the real SampleBuffer', () => {
  it('lastN includes samples the buffer has not committed yet', () => {
    ctx.bus.publish([sample('a', 1000, 1), sample('b', 1000, 10), sample('a', 2000, 2), sample('b', 2000, 20)]);
    buffer.flush();
    ctx.bus.publish([sample('a', 3000, 3), sample('b', 3000, 30)]);
    expect(rows(buffer.lastN(['a', 'b'], 3))).toEqual([[null, null, null], [1000, 1, 10], [2000, 2, 20]]);
    expect(rows(reader.lastN(['a', 'b'], 3))).toEqual([[1000, 1, 10], [2000, 2, 20], [3000, 3, 30]]);
    buffer.flush();
    // Once committed, memory and buffer agree.
    expect(rows(reader.lastN(['a', 'b'], 3))).toEqual(rows(buffer.lastN(['a', 'b'], 3)));
  });

  it('after a restart (nothing in memory yet) the history comes from the buffer', () => {
    ctx.bus.publish([sample('a', 1000, 1), sample('b', 1000, 10), sample('a', 2000, 2), sample('b', 2000, 20)]);
    buffer.flush();
    const restarted = new FreshWindowReader(buffer, ['a', 'b'], 100);
    expect(rows(restarted.lastN(['a', 'b'], 2))).toEqual([[1000, 1, 10], [2000, 2, 20]]);
    restarted.add([sample('a', 3000, 3)]);
    expect(rows(restarted.lastN(['a', 'b'], 2))).toEqual([[2000, 2, 10], [3000, 3, 20]]);
  });

  it('aligns each tag from its newest sample and keeps bad quality invalid', () => {
    ctx.bus.publish([sample('a', 1000, 1), sample('a', 2000, 2), sample('b', 1500, 15)]);
    buffer.flush();
    ctx.bus.publish([sample('a', 3000, 3), sample('b', 2500, 25, 'bad'), sample('b', 2600, true)]);
    expect(rows(reader.lastN(['a', 'b'], 3))).toEqual([[1500, 1, 15], [2500, 2, null], [3000, 3, 1]]);
  });

  it('resampled holds the newest uncommitted value on the grid, within maxHoldMs', () => {
    ctx.bus.publish([sample('a', 1000, 1), sample('b', 1000, 10)]);
    buffer.flush();
    ctx.bus.publish([sample('a', 2500, 2), sample('b', 3100, 30, 'uncertain')]);
    expect(rows(reader.resampled(['a', 'b'], 1000, 4000, 1000))).toEqual([
      [1000, 1, 10], [2000, 1, 10], [3000, 2, 10], [4000, 2, null],
    ]);
    expect(rows(reader.resampled(['a', 'b'], 1000, 4000, 1000, 1000))).toEqual([
      [1000, 1, 10], [2000, 1, 10], [3000, 2, null], [4000, null, null],
    ]);
  });

  it('ignores tags it does not watch and keeps at most `keep` samples per tag', () => {
    const small = new FreshWindowReader(buffer, ['a'], 2);
    small.add([sample('a', 1, 1), sample('a', 2, 2), sample('a', 3, 3), sample('z', 4, 4)]);
    expect(rows(small.lastN(['a'], 3))).toEqual([[null, null], [2, 2], [3, 3]]);
  });

  it('ignores samples without a usable timestamp, as the buffer does: they cannot block fresher samples', () => {
    ctx.bus.publish([sample('a', 1000, 1), sample('b', 1000, 10)]);
    buffer.flush();
    ctx.bus.publish([sample('a', Number.NaN, 99), sample('a', 1e300, 98), sample('a', 2500, 2), sample('b', 2600, 20)]);
    expect(rows(reader.resampled(['a', 'b'], 1000, 3000, 1000))).toEqual([[1000, 1, 10], [2000, 1, 10], [3000, 2, 20]]);
    expect(rows(reader.lastN(['a', 'b'], 2))).toEqual([[1000, 1, 10], [2600, 2, 20]]);
  });

  it('puts a late sample in time order', () => {
    reader.add([sample('a', 3000, 3), sample('a', 1000, 1), sample('a', 2000, 2), sample('b', 1, 0)]);
    expect(rows(reader.lastN(['a'], 3))).toEqual([[1000, 1], [2000, 2], [3000, 3]]);
  });
});
