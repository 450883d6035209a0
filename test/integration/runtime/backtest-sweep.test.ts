import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/daemon/cli.js';
import { runBacktest, type BacktestResult } from '../../../src/runtime/backtest.js';
import { labelledFaults, parseLabelsCsv, thresholdSweep } from '../../../src/runtime/backtest-report.js';
import { fixture, modelConfig, until } from '../../unit/runtime/runtime-context.js';
import { RuntimeHarness } from './runtime-harness.js';

/**
 * The threshold sweep against a hand computation. last-value.onnx outputs the last row's first input (tag a, z-scored
 * with mean 0 and std 1: unchanged), so the value each window's rule reads is the a of its newest row. Values are
 * multiples of 1/16, exact in float32.
 *
 * Rows every 10 min, i = 0..11; the window has 4 rows, so windows 0..2 are not evaluated (no_data):
 *   i        3     4      5      6      7      8      9     10     11
 *   a     0.25 0.875 0.9375  0.375  0.625  0.875   0.25   0.75  0.125
 * Rule raiseAbove 0.75 / clearBelow 0.5 (the sweep keeps the gap 0.25); period = 2 h (from i=0 to i=0 + 120 min).
 *   0.75 (clear 0.5):  raise 40 (0.875), clear 60 (0.375), raise 80, clear 90 (0.25); 0.75 at 100 is not above → 2 alerts, 30 min
 *   0.5  (clear 0.25): raise 40; 0.25 at 90 is not below 0.25; clear 110 (0.125)          → 1 alert, 70 min
 *   0.9  (clear 0.65): raise 50 (0.9375), clear 60                                         → 1 alert, 10 min
 *   0.25 (clear 0):    raise 40, never cleared: in alert until the end, 120                → 1 alert, 80 min
 * Labels: faults [50, 70] and [100, 110] min. Horizon 15 min: a raise in [35, 70] or [85, 110] is right.
 *   0.75: raises 40 ✓, 80 ✗ → precision 0.5; fault 1 caught at 40 (lead 10 min), fault 2 missed → recall 0.5
 *   0.5, 0.25: raise 40 → precision 1, recall 0.5, lead 10 min;  0.9: raise 50 → precision 1, recall 0.5, lead 0
 * Horizon 25 min ([25, 70], [75, 110]): 0.75 catches both (leads 10 and 20 min, median 15) → precision 1, recall 1.
 */
const TAGS = ['press1.a', 'press1.b'];
const A = [0, 0, 0, 0.25, 0.875, 0.9375, 0.375, 0.625, 0.875, 0.25, 0.75, 0.125];
const MIN = 60_000;
let h: RuntimeHarness;
let base: number;
let result: BacktestResult;
const cfg = modelConfig({ alert: { raiseAbove: 0.75, clearBelow: 0.5 } });
const labelsCsv = (b: number): string =>
  ['ts,label', `${b},0`, `${b + 50 * MIN},1`, `${b + 60 * MIN},1`, `${b + 70 * MIN},0`, new Date(b + 100 * MIN).toISOString() + ',1', `${b + 110 * MIN},0`].join('\n');

beforeAll(async () => {
  h = await new RuntimeHarness().start();
  base = Math.floor((Date.now() - 3 * 3_600_000) / 3_600_000) * 3_600_000;
  A.forEach((a, i) => h.publish(base + i * 10 * MIN, TAGS, [a, 10]));
  await until(() => h.buffer.recent('press1.a', 1, Number.POSITIVE_INFINITY)[0]?.ts === base + 110 * MIN, 5000, 'samples committed');
  result = await runBacktest({ cfg, file: fixture('last-value.onnx'), reader: h.buffer, fromMs: base, toMs: base + 120 * MIN });
});

afterAll(async () => {
  await h.stop();
});

describe('backtest threshold sweep (hand computation on last-value.onnx)', () => {
  it('evaluates one window per sample time and finds the configured rule\'s alerts', () => {
    expect(result.rows.map((r) => r.ts)).toEqual(A.map((_, i) => base + i * 10 * MIN));
    expect(result.skipped).toEqual({ no_data: 3 });
    expect(result.rows.slice(3).map((r) => r.values[0])).toEqual(A.slice(3));
    expect(result.alerts).toEqual([
      { rule: 'alert', raisedAt: base + 40 * MIN, raiseValue: 0.875, clearedAt: base + 60 * MIN, clearValue: 0.375 },
      { rule: 'alert', raisedAt: base + 80 * MIN, raiseValue: 0.875, clearedAt: base + 90 * MIN, clearValue: 0.25 },
    ]);
  });

  it('sweeps the raise threshold: alerts per hour and shift, time in alert, precision, recall, lead time', () => {
    const faults = labelledFaults(parseLabelsCsv(labelsCsv(base)));
    expect(faults).toEqual([{ start: base + 50 * MIN, end: base + 70 * MIN }, { start: base + 100 * MIN, end: base + 110 * MIN }]);
    const rows = thresholdSweep(result, 0, [0.25, 0.5, 0.75, 0.9], { faults, horizonMs: 15 * MIN });
    expect(rows.map((r) => [r.threshold, r.raises, r.alertsPerHour, r.alertsPerShift, r.timeInAlertMs / MIN])).toEqual([
      [0.25, 1, 0.5, 4, 80],
      [0.5, 1, 0.5, 4, 70],
      [0.75, 2, 1, 8, 30],
      [0.9, 1, 0.5, 4, 10],
    ]);
    expect(rows.map((r) => [r.labels!.precision, r.labels!.recall, r.labels!.leadTimesMs.map((t) => t / MIN)])).toEqual([
      [1, 0.5, [10]],
      [1, 0.5, [10]],
      [0.5, 0.5, [10]],
      [1, 0.5, [0]],
    ]);
    const wide = thresholdSweep(result, 0, [0.75], { faults, horizonMs: 25 * MIN })[0]!.labels!;
    expect([wide.precision, wide.recall, wide.leadTimesMs.map((t) => t / MIN), wide.meanLeadMs / MIN, wide.medianLeadMs / MIN]).toEqual([1, 1, [10, 20], 15, 15]);
  });

  it('prints the same numbers from `lineguard backtest`, with a threshold override and labels', async () => {
    const configFile = join(h.ctx.stateDir, 'lineguard.yaml');
    const labels = join(h.ctx.stateDir, 'labels.csv');
    writeFileSync(labels, labelsCsv(base));
    writeFileSync(configFile, [
      `gateway: { id: gw-test, stateDir: ${JSON.stringify(h.ctx.stateDir)} }`,
      'models:',
      '  - name: press1',
      `    file: ${JSON.stringify(fixture('last-value.onnx'))}`,
      `    inputs: [${TAGS.join(', ')}]`,
      '    window: { samples: 4 }',
      '    alert: { raiseAbove: 0.9, clearBelow: 0.5 }',
    ].join('\n'));
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l), log: pino({ level: 'silent' }) };
    const args = ['backtest', '--config', configFile, '--model', 'press1', '--from', String(base), '--to', new Date(base + 120 * MIN).toISOString(),
      '--raise-above', '0.75', '--thresholds', '0.25,0.5,0.75,0.9', '--labels', labels, '--horizon', '15m'];
    expect(await main(args, io), err.join('\n')).toBe(0);
    const text = out.join('\n');
    expect(text).toContain('windows: 12, 9 evaluated, not evaluated: no_data 3');
    expect(text).toContain('rule alert (raiseAbove 0.75, clearBelow 0.5): 2 alerts, 1/h, 8/shift (8 h), time in alert 30 min 0 s (25 %)');
    expect(text).toMatch(/0\.75\s+2\s+1\s+8\s+30 min 0 s\s+0\.5\s+0\.5 \(1\/2\)\s+10 min 0 s/);
    out.length = 0;
    expect(await main([...args, '--json'], io)).toBe(0);
    const doc = JSON.parse(out.join('\n')) as { sweep: { rows: Array<{ threshold: number; raises: number; labels: { precision: number } }> } };
    expect(doc.sweep.rows.map((r) => [r.threshold, r.raises, r.labels.precision])).toEqual([[0.25, 1, 1], [0.5, 1, 1], [0.75, 2, 0.5], [0.9, 1, 1]]);
    expect(await main(['backtest', '--config', configFile, '--model', 'nope'], io)).toBe(64);
  });
});
