import Sqlite from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInferences } from '../../../src/buffer/inference-log.js';
import { main } from '../../../src/daemon/cli.js';
import { fixture, metricValue, modelConfig, until } from '../../unit/runtime/runtime-context.js';
import { RuntimeHarness } from './runtime-harness.js';

/**
 * A shadow model runs on the live model's windows, is recorded beside it and never publishes. The candidate is
 * slow-v1.onnx: failure_probability = a + 1 (the live last-value.onnx gives a), so every compared window differs by
 * 1 and the shadow rule (raiseAbove 0.8) raises at its first window while the live one, with a < 0.8, never does.
 */
const TAGS = ['press1.a', 'press1.b'];
let h: RuntimeHarness;

beforeEach(async () => {
  h = await new RuntimeHarness().start();
});

afterEach(async () => {
  await h.stop();
});

describe('shadow model', () => {
  it('records its outputs as <name>#shadow, exports agreement, and never publishes an alert', async () => {
    const cfg = modelConfig({ shadow: { file: fixture('slow-v1.onnx') }, schedule: { everyMs: 20 } });
    const runner = await h.runner(cfg, { recorder: h.buffer.inferences });
    const shadow = (): { evaluated: number; agreement: Array<{ compared: number; meanAbsDiff: number | null; eventDisagreements: number; wouldBeActive: boolean }> } =>
      runner.health().details!.shadow as never;
    await until(() => (shadow() as { version?: string } & object) !== undefined && 'version' in (shadow() as object), 15_000, 'the shadow loaded');
    const base = Date.now() - 60_000;
    for (let i = 0; i < 10; i++) {
      h.publish(base + i * 1000, TAGS, [0.1 + i * 0.05, 10]);
      await until(() => h.records.length >= Math.max(0, i - 2), 5000, `live window ${i}`);
    }
    await until(() => shadow().evaluated >= 7, 10_000, 'the shadow evaluated the live windows');
    const agreement = shadow().agreement[0]!;
    expect(agreement.compared).toBe(shadow().evaluated);
    expect(Math.abs(agreement.meanAbsDiff! - 1)).toBeLessThan(1e-6);
    expect(agreement.eventDisagreements).toBe(1); // the shadow's raise at its first window
    expect(agreement.wouldBeActive).toBe(true);
    expect(Math.abs((await metricValue(h.ctx.metrics, 'lineguard_shadow_mean_abs_diff', { model: 'press1', rule: 'alert' }))! - 1)).toBeLessThan(1e-6);
    expect(await metricValue(h.ctx.metrics, 'lineguard_shadow_event_disagreements_total', { model: 'press1', rule: 'alert' })).toBe(1);
    // Never publishes: the outbox holds nothing (the live rule never raised, the shadow's raise is only counted).
    expect(h.alerts()).toEqual([]);

    await runner.stop();
    await until(() => h.buffer.inferences.pending === 0, 5000, 'record committed');
    const db = new Sqlite(h.buffer.file, { readonly: true });
    const live = readInferences(db, { model: 'press1' }).filter((r) => !r.skipped);
    const shadowRows = readInferences(db, { model: 'press1#shadow' }).filter((r) => !r.skipped);
    db.close();
    expect(shadowRows.map((r) => r.ts)).toEqual(live.map((r) => r.ts));
    shadowRows.forEach((r, i) => expect(Math.abs((r.outputs!.failure_probability as number) - (live[i]!.outputs!.failure_probability as number) - 1)).toBeLessThan(1e-6));

    const out: string[] = [];
    expect(await main(['outputs', '--db', h.buffer.file, '--model', 'press1'], { out: (l) => out.push(l), err: () => undefined, log: pino({ level: 'silent' }) })).toBe(0);
    expect(out.some((l) => / press1 /.test(l))).toBe(true);
    expect(out.some((l) => / press1#shadow /.test(l))).toBe(true);
  });
});
