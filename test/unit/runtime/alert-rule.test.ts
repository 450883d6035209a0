import { describe, expect, it } from 'vitest';
import { AlertRule, type ThresholdRule } from '../../../src/runtime/alert-rule.js';

function rule(r: Partial<ThresholdRule>): AlertRule {
  let n = 0;
  return new AlertRule({ forSamples: 1, forMs: 0, cooldownMs: 0, ...r }, () => `alert-${++n}`);
}

/** Feeds [ts, value] pairs and returns the transitions as compact strings, e.g. `raise@30:0.9#alert-1`. */
function run(r: AlertRule, points: Array<[number, number]>): string[] {
  const out: string[] = [];
  for (const [ts, value] of points) {
    const t = r.evaluate(value, ts);
    if (t) out.push(`${t.type}@${ts}:${value}#${t.occurrence.alertId}`);
  }
  return out;
}

describe('AlertRule hysteresis', () => {
  it('raises above raiseAbove, holds between the thresholds, clears below clearBelow', () => {
    const r = rule({ raiseAbove: 0.8, clearBelow: 0.5 });
    expect(run(r, [[0, 0.1], [10, 0.79], [20, 0.8], [30, 0.81], [40, 0.7], [50, 0.55], [60, 0.5], [70, 0.49], [80, 0.7], [90, 0.9]])).toEqual([
      'raise@30:0.81#alert-1', // 0.8 itself is not above
      'clear@70:0.49#alert-1', // 0.7, 0.55 and 0.5 sit in the hysteresis band
      'raise@90:0.9#alert-2', // a new occurrence gets a new id
    ]);
  });

  it('works the other way round for a value that falls (remaining useful life)', () => {
    const r = rule({ raiseBelow: 30, clearAbove: 50 });
    expect(run(r, [[0, 120], [1, 31], [2, 29], [3, 40], [4, 49], [5, 51], [6, 20]])).toEqual([
      'raise@2:29#alert-1',
      'clear@5:51#alert-1',
      'raise@6:20#alert-2',
    ]);
  });

  it('the raise and its clear share the alertId; the clear says when it was raised', () => {
    const r = rule({ raiseAbove: 1, clearBelow: 0 });
    const raise = r.evaluate(2, 100);
    const clear = r.evaluate(-1, 250);
    expect(raise).toMatchObject({ type: 'raise', ts: 100, occurrence: { alertId: 'alert-1', raisedAt: 100, raiseValue: 2 } });
    expect(clear).toMatchObject({ type: 'clear', ts: 250, clearedAt: 250, occurrence: { alertId: 'alert-1', raisedAt: 100 } });
    expect(r.active).toBeUndefined();
  });

  it('ignores non-finite values without resetting the debounce', () => {
    const r = rule({ raiseAbove: 1, clearBelow: 0, forSamples: 2 });
    expect(run(r, [[0, 2], [1, Number.NaN], [2, Number.POSITIVE_INFINITY], [3, 2]])).toEqual(['raise@3:2#alert-1']);
  });

  it('refuses a rule without a threshold', () => {
    expect(() => rule({})).toThrow(/no threshold/);
  });
});

describe('AlertRule debounce', () => {
  it('forSamples: needs k consecutive hits; one miss starts over', () => {
    const r = rule({ raiseAbove: 0.8, clearBelow: 0.5, forSamples: 3 });
    expect(run(r, [[0, 0.9], [1, 0.9], [2, 0.1], [3, 0.9], [4, 0.9], [5, 0.9], [6, 0.9]])).toEqual(['raise@5:0.9#alert-1']);
  });

  it('forSamples applies to clearing too', () => {
    const r = rule({ raiseAbove: 0.8, clearBelow: 0.5, forSamples: 2 });
    expect(run(r, [[0, 0.9], [1, 0.9], [2, 0.1], [3, 0.6], [4, 0.1], [5, 0.1]])).toEqual([
      'raise@1:0.9#alert-1',
      'clear@5:0.1#alert-1', // 0.6 (in the band) broke the first clearing streak
    ]);
  });

  it('forMs: the condition must hold for at least that long in sample time', () => {
    const r = rule({ raiseAbove: 10, clearBelow: 5, forMs: 1000 });
    expect(run(r, [[0, 11], [400, 12], [999, 11], [1000, 11], [1500, 1], [2000, 1], [2499, 1], [2500, 1]])).toEqual([
      'raise@1000:11#alert-1',
      'clear@2500:1#alert-1',
    ]);
  });

  it('forSamples and forMs must both hold', () => {
    const r = rule({ raiseAbove: 10, clearBelow: 5, forSamples: 3, forMs: 100 });
    // 3 samples after 20 ms: not yet; the time condition is met at 100 ms.
    expect(run(r, [[0, 11], [10, 11], [20, 11], [100, 11]])).toEqual(['raise@100:11#alert-1']);
    const r2 = rule({ raiseAbove: 10, clearBelow: 5, forSamples: 3, forMs: 100 });
    // 200 ms but only 2 samples: not yet.
    expect(run(r2, [[0, 11], [200, 11], [210, 11]])).toEqual(['raise@210:11#alert-1']);
  });
});

describe('AlertRule cooldown', () => {
  it('no raise within cooldownMs after a clear; a persisting condition raises when it ends', () => {
    const r = rule({ raiseAbove: 0.8, clearBelow: 0.5, cooldownMs: 1000 });
    expect(run(r, [[0, 0.9], [100, 0.1], [200, 0.9], [600, 0.95], [1099, 0.9], [1100, 0.9], [1200, 0.1]])).toEqual([
      'raise@0:0.9#alert-1',
      'clear@100:0.1#alert-1',
      'raise@1100:0.9#alert-2', // clearedAt 100 + 1000
      'clear@1200:0.1#alert-2',
    ]);
  });

  it('a condition that went away during the cooldown does not raise afterwards', () => {
    const r = rule({ raiseAbove: 0.8, clearBelow: 0.5, cooldownMs: 1000 });
    expect(run(r, [[0, 0.9], [100, 0.1], [200, 0.9], [300, 0.2], [1500, 0.3]])).toEqual(['raise@0:0.9#alert-1', 'clear@100:0.1#alert-1']);
  });
});

describe('AlertRule snapshot', () => {
  it('restores an active occurrence (after a restart the clear keeps the alertId)', () => {
    const first = rule({ raiseAbove: 1, clearBelow: 0 });
    first.evaluate(5, 10);
    const saved = JSON.parse(JSON.stringify(first.snapshot())) as ReturnType<AlertRule['snapshot']>;
    const second = rule({ raiseAbove: 1, clearBelow: 0 });
    second.restore({ ...saved, cooldownUntil: Number.NEGATIVE_INFINITY });
    expect(second.active?.alertId).toBe('alert-1');
    expect(second.evaluate(5, 20)).toBeUndefined(); // still active: no second raise
    expect(second.evaluate(-1, 30)).toMatchObject({ type: 'clear', occurrence: { alertId: 'alert-1', raisedAt: 10 } });
  });

  it('restore rolls back a transition (the outbox refused it)', () => {
    const r = rule({ raiseAbove: 1, clearBelow: 0 });
    const before = r.snapshot();
    expect(r.evaluate(2, 1)?.type).toBe('raise');
    r.restore(before);
    expect(r.active).toBeUndefined();
    expect(r.evaluate(2, 2)).toMatchObject({ type: 'raise', occurrence: { alertId: 'alert-2' } });
  });
});
