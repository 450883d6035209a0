import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferConfigSchema, type BufferConfig } from '../../../src/buffer/config.js';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import type { TagSample } from '../../../src/core/tag-sample.js';
import type { TagWindow } from '../../../src/core/window.js';
import { LiveSeries } from '../../../src/runtime/live-series.js';
import { RecentSamples } from '../../../src/runtime/recent-samples.js';
import { assembleWindow, type AssemblyPlan } from '../../../src/runtime/window-assembly.js';
import { runtimeContext } from './runtime-context.js';

const TAGS = ['line.a', 'line.b', 'line.c'];

function s(tag: string, ts: number, value: number | string | boolean, quality: TagSample['quality'] = 'good'): TagSample {
  return { tag, ts, value, quality, source: 'opcua/plc' };
}

/** Rows of the window as [ts, ...values] with null for invalid cells: easy to read in a failure. */
function table(w: TagWindow): Array<Array<number | null>> {
  const out: Array<Array<number | null>> = [];
  for (let r = 0; r < w.rows; r++) {
    const row: Array<number | null> = [w.ts[r]!];
    for (let c = 0; c < w.tags.length; c++) row.push(w.valid[r * w.tags.length + c] ? w.values[r * w.tags.length + c]! : null);
    out.push(row);
  }
  return out;
}

describe('window assembly: sample and hold on source time', () => {
  it('holds each tag\'s last value at every frame of the grid (three tags changing at different times)', () => {
    const memory = new RecentSamples(TAGS);
    memory.add([s('line.c', 500, 7), s('line.a', 1000, 1), s('line.b', 1800, 10), s('line.a', 2100, 2), s('line.b', 3000, 11)]);
    const plan: AssemblyPlan = { tags: TAGS, samples: 3, periodMs: 1000, maxHoldMs: [60_000, 60_000, 60_000] };
    expect(table(assembleWindow(memory, plan, 3000))).toEqual([
      [1000, 1, null, 7], // b has not reported yet at 1000
      [2000, 1, 10, 7],
      [3000, 2, 11, 7], // c reported once, at 500: held
    ]);
  });

  it('a value held longer than maxHoldMs, and a bad sample (a source that lost its connection), are invalid', () => {
    const memory = new RecentSamples(TAGS);
    memory.add([s('line.a', 0, 1), s('line.b', 0, 5), s('line.c', 0, 9), s('line.c', 2500, Number.NaN, 'bad')]);
    const plan: AssemblyPlan = { tags: TAGS, samples: 4, periodMs: 1000, maxHoldMs: [1500, 60_000, 60_000] };
    expect(table(assembleWindow(memory, plan, 3000))).toEqual([
      [0, 1, 5, 9],
      [1000, 1, 5, 9],
      [2000, null, 5, 9], // a held 2000 ms > 1500
      [3000, null, 5, null], // c marked bad at 2500
    ]);
  });

  it('without periodMs, one frame per distinct sample time (rows of JSON messages), tags held', () => {
    const memory = new RecentSamples(TAGS);
    memory.add([s('line.a', 1000, 1), s('line.b', 1000, 2), s('line.c', 1000, 3)]);
    memory.add([s('line.a', 2000, 4), s('line.b', 2000, 5)]); // c unchanged
    memory.add([s('line.a', 2500, 6)]);
    const plan: AssemblyPlan = { tags: TAGS, samples: 3, maxHoldMs: [60_000, 60_000, 60_000] };
    expect(table(assembleWindow(memory, plan, 2500))).toEqual([
      [1000, 1, 2, 3],
      [2000, 4, 5, 3],
      [2500, 6, 5, 3],
    ]);
    expect(table(assembleWindow(memory, plan, 2000))).toEqual([[1000, 1, 2, 3], [2000, 4, 5, 3]]);
  });

  it('a later sample with the same timestamp replaces the earlier one, in memory as in the buffer', () => {
    const memory = new RecentSamples(['line.a']);
    memory.add([s('line.a', 1000, 1), s('line.a', 1000, 2), s('line.a', 1000.4, 3)]);
    expect(memory.series('line.a', 0, 2000)).toEqual([{ ts: 1000, value: 3, valid: true }]);
  });
});

describe('one window assembly: memory and the SQLite buffer give the same window', () => {
  const ctx = runtimeContext();
  let buffer: SampleBuffer;

  beforeEach(async () => {
    buffer = new SampleBuffer(Value.Default(BufferConfigSchema, { flushIntervalMs: 60_000 }) as BufferConfig, ctx);
    await buffer.start(new AbortController().signal);
  });
  afterEach(async () => {
    await buffer.stop();
  });

  it('for 300 windows over random report-by-exception data, grid and per-sample-time, memory = buffer = memory + buffer', () => {
    // Deterministic pseudo-random: tags change at different rates, some hold for long stretches, some samples bad,
    // strings and booleans mixed in, duplicate timestamps, fractional milliseconds.
    let seed = 42;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const memory = new RecentSamples(TAGS);
    const early = new RecentSamples(TAGS); // only sees the second half: it must fall back to the buffer
    const samples: TagSample[] = [];
    for (let t = 0; t < 60_000; t += 100) {
      for (const [i, tag] of TAGS.entries()) {
        if (rand() < [0.5, 0.1, 0.02][i]!) {
          const r = rand();
          const value = r < 0.05 ? 'text' : r < 0.1 ? r < 0.075 : Math.round(rand() * 1000) / 10;
          samples.push(s(tag, t + (rand() < 0.1 ? 0.4 : 0), value, rand() < 0.05 ? 'bad' : rand() < 0.05 ? 'uncertain' : 'good'));
          if (rand() < 0.03) samples.push(s(tag, t, Math.round(rand() * 1000) / 10));
        }
      }
    }
    ctx.bus.publish(samples);
    memory.add(samples);
    early.add(samples.filter((x) => x.ts >= 30_000));
    buffer.flush();
    const live = new LiveSeries(early, buffer);
    let compared = 0;
    for (const plan of [
      { tags: TAGS, samples: 30, periodMs: 200, maxHoldMs: [5_000, 20_000, 60_000] },
      { tags: TAGS, samples: 10, maxHoldMs: [5_000, 20_000, 60_000] },
    ] satisfies AssemblyPlan[]) {
      for (let end = 31_000; end < 60_000; end += 193) {
        const fromMemory = assembleWindow(memory, plan, end);
        expect(assembleWindow(buffer, plan, end)).toEqual(fromMemory);
        expect(assembleWindow(live, plan, end)).toEqual(fromMemory);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(290);
    // Overwrites with a different value are counted, not silent.
    expect(buffer.stats().written).toBeGreaterThan(0);
  });
});
