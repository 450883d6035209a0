import { describe, expect, it } from 'vitest';
import { SourceClocks, type ClockStep } from '../../../src/core/source-clock.js';
import { TagBus } from '../../../src/core/tag-bus.js';
import type { TagSample } from '../../../src/core/tag-sample.js';

/** Clocks driven by a hand-set wall and monotonic clock, behind a real bus. */
function rig(policy?: Partial<{ timestamps: 'source' | 'gateway'; maxSkewMs: number; stepThresholdMs: number }>) {
  let wall = 1_700_000_000_000;
  let mono = 1000;
  const clocks = new SourceClocks(() => wall, () => mono);
  if (policy) clocks.setPolicy('opcua/plc', { timestamps: 'source', maxSkewMs: 86_400_000, stepThresholdMs: 300_000, ...policy });
  const bus = new TagBus(undefined, clocks.stamp);
  const seen: TagSample[] = [];
  bus.subscribe((b) => seen.push(...b));
  const steps: ClockStep[] = [];
  clocks.onStep((s) => steps.push(s));
  const send = (tag: string, ts: number, extra: Partial<TagSample> = {}): TagSample => {
    const s: TagSample = { tag, ts, value: 1, quality: 'good', source: 'opcua/plc', ...extra };
    bus.publish([s]);
    return seen[seen.length - 1]!;
  };
  return {
    clocks, seen, steps, send,
    advance: (ms: number) => {
      wall += ms;
      mono += ms;
    },
    get wall() {
      return wall;
    },
  };
}

describe('SourceClocks on the tag bus', () => {
  it('keeps source time, measures the offset and extrapolates the source time on the monotonic clock', () => {
    const r = rig();
    const plcBehind = r.wall - 3_600_000; // a PLC an hour behind
    const s = r.send('a', plcBehind);
    expect(s).toMatchObject({ ts: plcBehind, receivedAt: r.wall });
    r.advance(250);
    r.send('a', plcBehind + 200);
    const state = r.clocks.states()[0]!;
    expect(state).toMatchObject({ source: 'opcua/plc', steps: 0, future: 0, newestTs: plcBehind + 200 });
    expect(state.offsetMs).toBe(3_600_000); // the smaller of 3,600,000 and 3,600,050
    r.advance(1000);
    expect(r.clocks.sourceNow('opcua/plc')).toBe(plcBehind + 200 + 1000);
    expect(r.steps).toEqual([]);
  });

  it('restamps a sample too far ahead with its arrival time minus the offset, and counts it', () => {
    const r = rig({ maxSkewMs: 60_000 });
    r.send('a', r.wall - 500);
    const future = r.send('a', Date.UTC(2030, 0, 1));
    expect(future.ts).toBe(r.wall - 500);
    expect(r.clocks.states()[0]!.future).toBe(1);
    // One hour ahead but within maxSkew is kept: a PLC on the wrong time zone still works on its own time.
    const within = rig();
    expect(within.send('a', within.wall + 3_600_000).ts).toBe(within.wall + 3_600_000);
  });

  it('detects a step back when a tag reports a time before its own previous sample, and starts a new timeline', () => {
    const r = rig({ stepThresholdMs: 60_000 });
    let ts = r.wall;
    for (let i = 0; i < 5; i++) {
      r.send('a', ts);
      r.send('b', ts);
      ts += 1000;
      r.advance(1000);
    }
    r.send('a', ts - 3_600_000); // the PLC clock stepped back one hour
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({ source: 'opcua/plc', tag: 'a', newTs: ts - 3_600_000 });
    expect(r.steps[0]!.deltaMs).toBe(-3_600_000 + 1000);
    // The new timeline goes on without further steps; b's first sample on it is not a step either.
    r.advance(1000);
    r.send('b', ts - 3_600_000 + 1000);
    r.send('a', ts - 3_600_000 + 1000);
    expect(r.steps).toHaveLength(1);
    expect(r.clocks.states()[0]).toMatchObject({ steps: 1, newestTs: ts - 3_600_000 + 1000 });
  });

  it('detects a step forward (more source time than real time passed), not a replay at accelerated time', () => {
    const r = rig({ stepThresholdMs: 60_000 });
    let ts = r.wall;
    // A replay: one row of source time per 20 ms of real time, for 2,000 rows (2,000 s of source time in 40 s).
    for (let i = 0; i < 2000; i++) {
      r.send('a', ts);
      ts += 1000;
      r.advance(20);
    }
    expect(r.steps).toEqual([]);
    // A tag that reports by exception after a long silence is not a step: real time passed too.
    r.advance(600_000);
    r.send('b', ts + 600_000);
    expect(r.steps).toEqual([]);
    r.send('a', ts + 600_000 + 7_200_000);
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]!.deltaMs).toBe(7_200_000);
  });

  it('an old value of a tag seen for the first time (report by exception on subscribe) is not a step', () => {
    const r = rig({ stepThresholdMs: 60_000 });
    r.send('a', r.wall);
    r.send('held', r.wall - 2 * 86_400_000); // last changed two days ago
    expect(r.steps).toEqual([]);
  });

  it('timestamps: gateway stamps every sample with its arrival', () => {
    const r = rig({ timestamps: 'gateway' });
    expect(r.send('a', 12345).ts).toBe(r.wall);
  });

  it('puts a connector marker stamped with gateway time on the source timeline', () => {
    const r = rig();
    r.send('a', r.wall - 3_600_000);
    r.advance(5000);
    const marker = r.send('a', r.wall, { timeBase: 'gateway', quality: 'bad' });
    expect(marker.ts).toBe(r.wall - 3_600_000);
    expect(marker.timeBase).toBeUndefined();
    expect(r.clocks.states()[0]!.mapped).toBe(1);
  });
});
