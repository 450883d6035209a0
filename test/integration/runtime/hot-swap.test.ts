/**
 * Hot swap under load: a slow model (~10 ms per inference) is replaced while data streams in. The new file is
 * first written half-way (a copy in progress), then completed.
 */
import { appendFileSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { fixture, metricValue, modelConfig, until } from '../../unit/runtime/runtime-context.js';
import { RuntimeHarness } from './runtime-harness.js';

const TAGS = ['line.a', 'line.b'];
let h: RuntimeHarness;

beforeEach(async () => {
  h = await new RuntimeHarness().start();
});
afterEach(async () => {
  await h.stop();
});

describe('hot swap under load', () => {
  it('loses no inference and never serves a half-loaded model', async () => {
    const v1 = await readModelFile(fixture('slow-v1.onnx'));
    const v2 = await readModelFile(fixture('slow-v2.onnx'));
    const offset: Record<string, number> = { [v1.version]: 1, [v2.version]: 2 };
    const path = join(h.ctx.stateDir, 'slow.onnx');
    copyFileSync(fixture('slow-v1.onnx'), path);
    // Output = last a + 1 (v1) or + 2 (v2); a alternates 0 and 10, so every inference raises or clears.
    const runner = await h.runner(modelConfig({
      name: 'slow', file: path, inputs: TAGS, schedule: { onNewData: true, everyMs: 60_000 }, alert: { raiseAbove: 5, clearBelow: 5 },
    }));
    expect(runner.health().details).toMatchObject({ version: v1.version });

    const published = new Map<number, number>();
    let ts = 0;
    const publisher = setInterval(() => {
      ts += 1000;
      const a = (ts / 1000) % 2 === 0 ? 0 : 10;
      published.set(ts, a);
      h.publish(ts, TAGS, [a, 1]);
    }, 15);
    try {
      await until(() => h.records.length >= 10, 10_000, 'inferences on v1');

      // A copy in progress: half of the new file. It must be refused and v1 must keep serving.
      const bytes = readFileSync(fixture('slow-v2.onnx'));
      const half = Math.floor(bytes.length / 2);
      writeFileSync(path, bytes.subarray(0, half));
      await until(() => runner.health().state === 'degraded', 10_000, 'the half file refused');
      expect(runner.health().reason).toContain(`still serving version ${v1.version}`);
      const servedDuringHalf = h.records.length;
      await until(() => h.records.length >= servedDuringHalf + 10, 10_000, 'v1 still serving');

      appendFileSync(path, bytes.subarray(half));
      await until(() => h.records.filter((r) => r.model.version === v2.version).length >= 10, 15_000, 'inferences on v2');
    } finally {
      clearInterval(publisher);
    }
    expect(runner.health()).toMatchObject({ state: 'up', details: { version: v2.version } });

    // Only whole, known models ever answered, and the swap happened once: v1 … v1, v2 … v2.
    const versions = h.records.map((r) => r.model.version);
    expect(new Set(versions)).toEqual(new Set([v1.version, v2.version]));
    const firstV2 = versions.indexOf(v2.version);
    expect(versions.slice(0, firstV2).every((v) => v === v1.version)).toBe(true);
    expect(versions.slice(firstV2).every((v) => v === v2.version)).toBe(true);
    // Every answer is the one its model gives for its window.
    for (const r of h.records) expect(r.value).toBeCloseTo(published.get(r.ts)! + offset[r.model.version]!, 5);
    // Inferences follow the data in order, none failed, none waited for a missing model.
    expect(h.records.map((r) => r.ts)).toEqual([...h.records.map((r) => r.ts)].sort((a, b) => a - b));
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'slow', result: 'error' })).toBeUndefined();
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'slow', result: 'timeout' })).toBeUndefined();
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_skipped_total', { model: 'slow', reason: 'model_not_loaded' })).toBeUndefined();

    // Every raise and clear reached the outbox, each with the version and value of the inference behind it.
    await until(() => h.alerts().length === h.records.filter((r) => r.transition).length, 5000, 'alerts in the outbox');
    const byTs = new Map(h.records.map((r) => [r.ts, r]));
    const alerts = h.alerts();
    alerts.forEach((alert, i) => {
      expect(alert.state).toBe(i % 2 === 0 ? 'raised' : 'cleared');
      const record = byTs.get(alert.ts)!;
      expect(alert.model?.version).toBe(record.model.version);
      expect(alert.output.value).toBeCloseTo(record.value, 6);
    });
    expect(new Set(alerts.map((a) => a.model?.version))).toEqual(new Set([v1.version, v2.version]));
  });
});
