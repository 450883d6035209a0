/**
 * ModelRunner end to end: real SampleBuffer (SQLite + durable outbox), real onnxruntime-node in a worker thread,
 * real files on disk.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AlertEvent, AlertOutbox, RuleStateWrite } from '../../../src/core/alert.js';
import { ModelRunner } from '../../../src/runtime/index.js';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { fixture, metricValue, modelConfig, until } from '../../unit/runtime/runtime-context.js';
import { RuntimeHarness } from './runtime-harness.js';

const TAGS = ['press1.a', 'press1.b'];
let h: RuntimeHarness;

beforeEach(async () => {
  h = await new RuntimeHarness().start();
});
afterEach(async () => {
  await h.stop();
});

/** The buffer's outbox refusing its first `times` enqueues as a full disk would; `left()` counts the refusals to come. */
function refusingOutbox(times: number): { outbox: AlertOutbox; left: () => number } {
  const outbox = h.buffer.outbox;
  let refuse = times;
  return {
    left: () => refuse,
    outbox: {
      enqueue: (a: AlertEvent, rule?: RuleStateWrite) => {
        if (refuse > 0) {
          refuse--;
          throw new Error('SQLITE_FULL: database or disk is full');
        }
        return outbox.enqueue(a, rule);
      },
      loadRuleState: outbox.loadRuleState.bind(outbox), saveRuleState: outbox.saveRuleState.bind(outbox),
      peek: outbox.peek.bind(outbox), ack: outbox.ack.bind(outbox), depth: outbox.depth.bind(outbox), onEnqueue: outbox.onEnqueue.bind(outbox),
      peekAfter: outbox.peekAfter.bind(outbox), ackThrough: outbox.ackThrough.bind(outbox), recordAttempt: outbox.recordAttempt.bind(outbox),
    },
  };
}

/** Publishes rows [a, b] at ts = 1000, 2000, ... starting after `from`. */
function rows(from: number, values: Array<[number, number]>): number {
  let ts = from;
  for (const [a, b] of values) h.publish((ts += 1000), TAGS, [a, b]);
  return ts;
}

describe('ModelRunner end to end', () => {
  it('raises and clears alerts into the durable outbox with everything an engineer needs', async () => {
    const runner = await h.runner(modelConfig({ schedule: { onNewData: true }, alert: { recentSamples: 3 } }));
    const lastValue = await readModelFile(fixture('last-value.onnx'));
    expect(runner.name).toBe('model/press1');
    // Loaded, but no window evaluated yet: warming up, not up.
    expect(runner.health()).toMatchObject({ state: 'starting', details: { provider: 'cpu', version: lastValue.version } });

    let ts = rows(0, [[0.1, 10], [0.2, 11], [0.3, 12], [0.4, 13]]);
    await until(() => h.records.length >= 1, 5000, 'first inference');
    expect(h.alerts()).toEqual([]);
    ts = rows(ts, [[0.95, 14]]);
    await until(() => h.alerts().length === 1, 5000, 'the raise');
    const raised = h.alerts()[0]!;
    expect(raised).toMatchObject({
      schema: 1,
      state: 'raised',
      kind: 'equipment_fault',
      severity: 'major',
      gateway: 'gw-test',
      asset: 'line-1/press-1',
      model: { name: 'press1', version: lastValue.version, hash: `sha256:${lastValue.sha256}` },
      provider: 'cpu',
      output: { name: 'failure_probability' },
      rule: { name: 'alert', raiseAbove: 0.8, clearBelow: 0.5, forSamples: 1, forMs: 0 },
      ts: 5000,
      raisedAt: 5000,
      // Raw values, before the model's normalisation (b has mean 10, std 2).
      inputs: { 'press1.a': [[3000, 0.3], [4000, 0.4], [5000, 0.95]], 'press1.b': [[3000, 12], [4000, 13], [5000, 14]] },
    });
    expect(raised.output.value).toBeCloseTo(0.95, 6);
    expect(raised.message).toMatch(/^major equipment_fault on line-1\/press-1: model press1 failure_probability is 0\.95, above 0\.8$/);

    rows(ts, [[0.6, 14], [0.2, 14]]); // 0.6 is inside the hysteresis band: no clear yet
    await until(() => h.alerts().length === 2, 5000, 'the clear');
    const cleared = h.alerts()[1]!;
    expect(cleared).toMatchObject({ state: 'cleared', alertId: raised.alertId, raisedAt: 5000, ts: 7000, clearedAt: 7000 });
    expect(cleared.eventId).not.toBe(raised.eventId);

    const m = h.ctx.metrics;
    expect(await metricValue(m, 'lineguard_model_alerts_raised_total', { model: 'press1' })).toBe(1);
    expect(await metricValue(m, 'lineguard_model_alerts_cleared_total', { model: 'press1' })).toBe(1);
    expect(await metricValue(m, 'lineguard_model_alert_active', { model: 'press1' })).toBe(0);
    expect(await metricValue(m, 'lineguard_model_provider', { model: 'press1', provider: 'cpu' })).toBe(1);
    expect(await metricValue(m, 'lineguard_model_inferences_total', { model: 'press1', result: 'ok' })).toBe(h.records.length);
    expect(await metricValue(m, 'lineguard_model_output', { model: 'press1', output: 'failure_probability' })).toBeCloseTo(0.2, 6);
    const histogram = await m.getSingleMetric('lineguard_model_inference_seconds')!.get();
    const counts = histogram.values as Array<{ metricName?: string; labels: Record<string, unknown>; value: number }>;
    expect(counts.find((v) => v.metricName === 'lineguard_model_inference_seconds_count' && v.labels.stage === 'total')?.value).toBe(h.records.length);

    const health = runner.health();
    expect(health.state).toBe('up');
    expect(health.details).toMatchObject({
      provider: 'cpu', providerNodes: { CPUExecutionProvider: 3 }, fallbacks: [], sha256: lastValue.sha256.slice(0, 12), metadataVersion: '1.0.0',
      input: { name: 'input', shape: '[batch, 4, 2]', fed: [1, 4, 2], features: ['a', 'b'] },
      normalisation: 'z-score with the model metadata mean/std',
      lastInference: { ts: 7000 },
      alerts: [{ rule: 'alert', active: false }],
    });
  });

  it('runs on its timer and evaluates each window once, however often the timer fires', async () => {
    const runner = await h.runner(modelConfig({ schedule: { everyMs: 20 } }));
    rows(0, [[0.1, 10], [0.2, 11], [0.3, 12], [0.9, 13]]);
    // The four rows came before the first tick: a model that starts evaluates the newest window only.
    await until(() => h.records.length === 1, 5000, 'the newest window');
    const ticks = (await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'press1', result: 'ok' }))!;
    // Ten more timer periods: nothing new, so nothing evaluated again (and no alert raised twice).
    await new Promise((r) => setTimeout(r, 200));
    expect(h.records.map((r) => r.ts)).toEqual([4000]);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'press1', result: 'ok' })).toBe(ticks);
    expect(h.alerts()).toHaveLength(1);
    rows(4000, [[0.95, 13]]);
    await until(() => h.records.length === 2, 5000, 'the next window');
    expect(h.records[1]!.ts).toBe(5000);
    expect(runner.health().state).toBe('up');
  });

  it('skips windows with gaps, says why in /healthz, and resumes when the data is whole', async () => {
    const runner = await h.runner(modelConfig({ schedule: { everyMs: 20 }, window: { latenessMs: 50 } }));
    h.publish(1000, ['press1.a'], [0.1]);
    await until(() => /no sample yet of press1\.b/.test(runner.health().reason ?? ''), 5000, 'the reason');
    expect(runner.health()).toMatchObject({ state: 'starting', reason: expect.stringMatching(/^waiting for the first full window: /) });
    rows(1000, [[0.1, 10], [0.2, 11], [0.3, 12], [0.4, 13]]);
    await until(() => h.records.length >= 1, 5000, 'an inference');
    expect(runner.health().state).toBe('up');
  });

  it('reads class probabilities with outputIndex "max" and puts the label in the alert', async () => {
    await h.runner(modelConfig({
      name: 'modes', file: fixture('classes.onnx'), inputs: ['x', 'y', 'z'], window: { samples: 1 },
      schedule: { onNewData: true }, alert: { outputIndex: 'max', raiseAbove: 0.9, clearBelow: 0.5, kind: 'quality_defect' },
    }));
    h.publish(1000, ['x', 'y', 'z'], [0, 0, 0]);
    await until(() => h.records.length === 1);
    h.publish(2000, ['x', 'y', 'z'], [0, 5, 0]);
    await until(() => h.alerts().length === 1);
    expect(h.alerts()[0]).toMatchObject({ kind: 'quality_defect', output: { name: 'failure_mode_probabilities', label: 'wear' } });
    expect(h.alerts()[0]!.output.value).toBeCloseTo(Math.exp(5) / (Math.exp(5) + 2), 6);
  });

  it('keeps the alertId across a restart: the clear after it belongs to the raise before it', async () => {
    const cfg = modelConfig({ schedule: { onNewData: true } });
    const first = await h.runner(cfg);
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.9, 10]]);
    await until(() => h.alerts().length === 1);
    await first.stop();
    expect(first.health().state).toBe('stopped');

    await h.runner(cfg);
    rows(4000, [[0.95, 10]]); // still high: no second raise
    await until(() => h.records.length === 2);
    rows(5000, [[0.1, 10]]);
    await until(() => h.alerts().length === 2);
    const [raised, cleared] = h.alerts() as [AlertEvent, AlertEvent];
    expect(cleared).toMatchObject({ state: 'cleared', alertId: raised.alertId, raisedAt: raised.raisedAt });
  });

  it('an outbox that refuses an alert does not lose it: the next inference raises it again', async () => {
    const flaky = refusingOutbox(1);
    await h.runner(modelConfig({ schedule: { onNewData: true } }), { outbox: flaky.outbox });
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.9, 10]]);
    await until(() => h.records.length === 1);
    expect(h.alerts()).toEqual([]);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_alert_enqueue_failures_total', { model: 'press1' })).toBe(1);
    rows(4000, [[0.91, 10]]);
    await until(() => h.alerts().length === 1);
    expect(h.alerts()[0]).toMatchObject({ state: 'raised', ts: 5000 });
  });

  it('a refused alert is retried on the schedule without new data, and health says why until it is stored', async () => {
    const flaky = refusingOutbox(3);
    const runner = await h.runner(modelConfig({ schedule: { everyMs: 50 } }), { outbox: flaky.outbox });
    // The fault is in the data once; the source then reports nothing new (it sends on change only).
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.9, 10]]);
    await until(() => flaky.left() === 2, 5000, 'the first refusal');
    await until(() => runner.health().state === 'degraded', 5000, 'degraded');
    expect(runner.health()).toMatchObject({
      state: 'degraded',
      reason: expect.stringMatching(/^the outbox refuses to store the raise of alert .* \(rule alert: SQLITE_FULL: database or disk is full\); retried at the next window/),
      details: { alerts: [{ rule: 'alert', refused: { state: 'raised' } }] },
    });
    await until(() => h.alerts().length === 1, 5000, 'the raise, stored on a retry');
    expect(h.alerts()[0]).toMatchObject({ state: 'raised', ts: 4000 });
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_alert_enqueue_failures_total', { model: 'press1' })).toBe(3);
    expect(runner.health().state).toBe('up');
    expect((runner.health().details!.alerts as Array<Record<string, unknown>>)[0]!.refused).toBeUndefined();
    expect(h.ctx.logs.filter((l) => l.msg.startsWith('the outbox refused the alert'))).toHaveLength(1);
  });

  it('works on a resampled window (window.periodMs)', async () => {
    const now = Date.now();
    await h.runner(modelConfig({ window: { samples: 4, periodMs: 100, latenessMs: 100 }, schedule: { everyMs: 50 } }));
    h.publish(now - 1000, TAGS, [0.2, 10]);
    h.publish(now - 50, TAGS, [0.85, 12]);
    await until(() => h.alerts().length === 1, 5000, 'the raise');
    expect(h.alerts()[0]!.output.value).toBeCloseTo(0.85, 6);
    // The raise is at a grid time of source time, the first whose whole window holds the new value.
    expect(h.alerts()[0]!.ts % 100).toBe(0);
  });

  it('a stop() that lands while start() sets up the file watch leaves nothing running', async () => {
    // stop() right after the model went live: start() is then awaiting the watcher's first stat of the file.
    const log = pino({ level: 'info' }, {
      write(line: string) {
        if (line.includes('model live on')) setImmediate(() => void runner.stop());
      },
    });
    const runner: ModelRunner = new ModelRunner(modelConfig({ schedule: { everyMs: 20 } }), { ...h.ctx, log }, {
      windows: h.buffer, outbox: h.buffer.outbox, baseDir: h.ctx.stateDir, onInference: (r) => h.records.push(r),
    });
    h.runners.push(runner);
    await runner.start(new AbortController().signal);
    expect(runner.health().state).toBe('stopped');
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.9, 10]]);
    h.buffer.flush();
    await new Promise((r) => setTimeout(r, 150));
    // No scheduler ran after stop (it would count the stopped model as not loaded, and hold the process open).
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_skipped_total', { model: 'press1', reason: 'model_not_loaded' })).toBeUndefined();
    expect(h.records).toEqual([]);
  });

  it('stop() removes its listeners, timers and metric label values', async () => {
    const listeners = h.ctx.bus.listenerCount;
    const runner = await h.runner(modelConfig({ schedule: { everyMs: 20, onNewData: true } }));
    expect(h.ctx.bus.listenerCount).toBe(listeners + 1);
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.4, 10]]);
    await until(() => h.records.length === 1);
    await runner.stop();
    await runner.stop();
    expect(h.ctx.bus.listenerCount).toBe(listeners);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'press1', result: 'ok' })).toBeUndefined();
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_provider', { model: 'press1', provider: 'cpu' })).toBeUndefined();
    const count = h.records.length;
    rows(4000, [[0.9, 10]]);
    await new Promise((r) => setTimeout(r, 100));
    expect(h.records.length).toBe(count);
  });
});

describe('ModelRunner with a bad model', () => {
  it('a missing model: start() resolves, the model is down with the reason, and comes up when the file appears', async () => {
    mkdirSync(join(h.ctx.stateDir, 'models'));
    // Relative paths are resolved from the config directory (baseDir).
    const runner = await h.runner(modelConfig({ file: 'models/press.onnx', schedule: { onNewData: true } }));
    const path = join(h.ctx.stateDir, 'models/press.onnx');
    expect(runner.health()).toMatchObject({ state: 'down', reason: `model file ${path} does not exist` });
    copyFileSync(fixture('last-value.onnx'), path);
    await until(() => runner.health().state === 'starting' && runner.health().details!.version !== undefined, 15_000, 'loaded after the file appeared');
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.4, 10]]);
    await until(() => runner.health().state === 'up', 5000, 'up');
  });

  it('a corrupt model is down with the reason; the rest keeps running', async () => {
    const bad = await h.runner(modelConfig({ name: 'bad', file: fixture('corrupt.onnx') }));
    const good = await h.runner(modelConfig({ name: 'good' }));
    expect(bad.health()).toMatchObject({ state: 'down', reason: expect.stringContaining('corrupt.onnx is not a valid ONNX model') });
    expect(good.health()).toMatchObject({ state: 'starting', details: { provider: 'cpu' } });
  });

  it('a model whose output is NaN neither raises nor clears, and health says so until its output is a number again', async () => {
    const runner = await h.runner(modelConfig({ file: fixture('nan-output.onnx'), schedule: { everyMs: 20 } }));
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.5, 10]]); // sqrt(0.5 - 1): NaN
    await until(() => runner.health().state === 'degraded', 5000, 'degraded');
    expect(runner.health().reason).toBe('windows are not evaluated: output failure_probability is NaN; rule alert is not evaluated');
    expect(h.records.at(-1)!.value).toBeNaN();
    expect(h.alerts()).toEqual([]);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_skipped_total', { model: 'press1', reason: 'output_not_finite' })).toBeGreaterThanOrEqual(1);
    // Nothing new arrives for a while: still degraded (a model that has not produced a usable output is not up).
    await new Promise((r) => setTimeout(r, 150));
    expect(runner.health().state).toBe('degraded');

    rows(4000, [[1.81, 10]]); // sqrt(0.81) = 0.9: above raiseAbove
    await until(() => h.alerts().length === 1, 5000, 'the raise');
    expect(h.alerts()[0]!.output.value).toBeCloseTo(0.9, 5);
    expect(runner.health().state).toBe('up');
  });

  it('a mismatched model is down, naming both shapes', async () => {
    const runner = await h.runner(modelConfig({ file: fixture('wrong-shape.onnx') }));
    expect(runner.health()).toMatchObject({
      state: 'down',
      reason: expect.stringContaining('has shape [batch, 8, 3] but the config expects [batch, 4, 2]'),
      details: { loadError: { code: 'mismatch' } },
    });
  });

  it('requireGpu without a GPU is down with a clear reason', async () => {
    const runner = await h.runner(modelConfig({ executionProviders: ['tensorrt', 'cuda'], requireGpu: true }));
    expect(runner.health()).toMatchObject({ state: 'down', reason: expect.stringContaining('requireGpu is set and no GPU provider loads here') });
  });

  it('an inference past schedule.timeoutMs is abandoned and the model reloaded in a new worker', async () => {
    const runner = await h.runner(modelConfig({ file: fixture('very-slow.onnx'), schedule: { onNewData: true, timeoutMs: 100 } }));
    expect(runner.health().state).toBe('starting');
    rows(0, [[0.1, 1], [0.2, 1], [0.3, 1], [0.4, 1]]);
    await until(() => runner.health().state === 'down', 5000, 'the timeout');
    expect(runner.health().reason).toBe('the model stopped working: no result after 100 ms (schedule.timeoutMs)');
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'press1', result: 'timeout' })).toBe(1);
    await until(async () => (await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'ok' })) === 2, 10_000, 'reloaded');
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'ok' })).toBe(2);
  });

  it('after a hung inference no second model is loaded until the stuck thread has ended, and health says why', async () => {
    const runner = await h.runner(modelConfig({ file: fixture('hang-on-input.onnx'), schedule: { onNewData: true, timeoutMs: 100 } }));
    // b = 3e6: ~2 s inside ONNX Runtime here (0.7 µs an iteration); the reload retry comes within 1.1 s (backoff).
    rows(0, [[0.1, 0], [0.2, 0], [0.3, 0], [0.4, 3e6]]);
    await until(() => runner.health().state === 'down', 5000, 'the timeout');
    await until(() => /still inside ONNX Runtime/.test(runner.health().reason ?? ''), 5000, 'the stuck thread reported');
    expect(runner.health()).toMatchObject({
      state: 'down',
      reason: expect.stringMatching(/^an inference of version .* hung past schedule\.timeoutMs and its thread is still inside ONNX Runtime; the model is loaded again when it returns/),
      details: { loadError: { code: 'stuck' } },
    });
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'ok' })).toBe(1);
    await until(async () => (await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'ok' })) === 2, 15_000, 'loaded again once the thread ended');
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'ok' })).toBe(2);
  });

  it('a bad new file keeps the old model serving (degraded), a good one swaps in', async () => {
    const path = join(h.ctx.stateDir, 'press.onnx');
    copyFileSync(fixture('last-value.onnx'), path);
    const runner = await h.runner(modelConfig({ file: path, schedule: { onNewData: true } }));
    const v1 = runner.health().details!.version as string;

    writeFileSync(path, 'this is not a model');
    await until(() => runner.health().state === 'degraded', 10_000, 'degraded');
    expect(runner.health().reason).toMatch(new RegExp(`is not a valid ONNX model .*; still serving version ${v1.replace('+', '\\+')}$`));
    rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.4, 10]]);
    await until(() => h.records.length === 1);
    expect(h.records[0]!.model.version).toBe(v1);

    copyFileSync(fixture('no-metadata.onnx'), path);
    const plain = await readModelFile(fixture('no-metadata.onnx'));
    await until(() => runner.health().details!.version === plain.version, 10_000, 'swap');
    expect(runner.health().state).toBe('up');
    rows(4000, [[0.2, 10]]);
    await until(() => h.records.length === 2);
    expect(h.records[1]!.model.version).toBe(plain.version);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'failed' })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'ok' })).toBe(2);
  });
});

describe('ModelRunner with several rules', () => {
  it('a two-output model runs one inference per window and evaluates two rules, each with its own state', async () => {
    await h.runner(modelConfig({
      schedule: { onNewData: true },
      alerts: [
        { output: 'failure_probability', raiseAbove: 0.8, clearBelow: 0.5 },
        { name: 'mean-a', output: 'window_mean', outputIndex: 0, raiseAbove: 0.6, clearBelow: 0.3, kind: 'degradation' },
      ],
    }));
    let ts = rows(0, [[0.1, 10], [0.1, 10], [0.1, 10], [0.9, 10]]); // last a 0.9: rule 1 raises; mean 0.3: rule 2 not
    await until(() => h.alerts().length === 1, 5000, 'the first raise');
    expect(h.alerts()[0]).toMatchObject({ state: 'raised', rule: { name: 'failure_probability' }, kind: 'equipment_fault' });
    ts = rows(ts, [[0.9, 10], [0.9, 10]]); // window a = 0.1, 0.9, 0.9, 0.9: mean 0.7 raises rule 2
    await until(() => h.alerts().length === 2, 5000, 'the second raise');
    expect(h.alerts()[1]).toMatchObject({ state: 'raised', rule: { name: 'mean-a' }, kind: 'degradation', output: { name: 'window_mean' } });
    expect(h.alerts()[1]!.alertId).not.toBe(h.alerts()[0]!.alertId);
    rows(ts, [[0.1, 10]]); // last 0.1 clears rule 1; mean 0.7 keeps rule 2
    await until(() => h.alerts().length === 3, 5000, 'the clear');
    expect(h.alerts()[2]).toMatchObject({ state: 'cleared', alertId: h.alerts()[0]!.alertId, rule: { name: 'failure_probability' } });
    // One inference per window, whatever the number of rules.
    expect(h.records.map((r) => r.ts)).toEqual([4000, 5000, 6000, 7000]);
    expect(await metricValue(h.ctx.metrics, 'lineguard_model_inferences_total', { model: 'press1', result: 'ok' })).toBe(4);
    expect(h.buffer.outbox.loadRuleState('press1/mean-a')).toContain('"active":{');
    expect(h.buffer.outbox.loadRuleState('press1/failure_probability')).not.toContain('"active"');
  });
});

describe('ModelRunner: silence is not health', () => {
  it('raises model_unavailable when its inputs go bad for unavailable.afterMs, and clears it when windows are evaluated again', async () => {
    const runner = await h.runner(modelConfig({ schedule: { everyMs: 50, onNewData: true }, unavailable: { afterMs: 1000 } }));
    let ts = rows(0, [[0.1, 10], [0.2, 10], [0.3, 10], [0.9, 10]]);
    await until(() => h.alerts().length === 1, 5000, 'a model alert');
    // The source loses its connection: every tag marked BadNoCommunication (what ConnectionMarkers publish).
    h.ctx.bus.publish(TAGS.map((tag) => ({ tag, ts: ts + 500, value: Number.NaN, quality: 'bad' as const, source: 'test/src', statusName: 'BadNoCommunication' })));
    await until(() => h.alerts().some((a) => a.kind === 'model_unavailable'), 5000, 'model_unavailable');
    const raised = h.alerts().find((a) => a.kind === 'model_unavailable')!;
    expect(raised).toMatchObject({
      state: 'raised', model: { name: 'press1' }, output: { name: 'available', value: 0 },
      unevaluatedAlerts: [h.alerts()[0]!.alertId],
    });
    expect(runner.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/^model_unavailable: cannot infer/) });
    ts = rows(ts + 1000, [[0.9, 10], [0.9, 10], [0.9, 10], [0.9, 10]]);
    await until(() => h.alerts().filter((a) => a.kind === 'model_unavailable').length === 2, 5000, 'the clear');
    expect(h.alerts().filter((a) => a.kind === 'model_unavailable')[1]).toMatchObject({ state: 'cleared', alertId: raised.alertId });
    expect(runner.health().state).toBe('up');
    // The model alert raised before stood through the outage: no second raise, no clear.
    expect(h.alerts().filter((a) => a.kind === 'equipment_fault')).toHaveLength(1);
  });

  it('after a restart, a device that has not sent yet is not unavailable while the values of the last run are within their hold', async () => {
    const cfg = modelConfig({ schedule: { everyMs: 50 }, unavailable: { afterMs: 1000 }, window: { maxHoldMs: 60_000, latenessMs: 0 } });
    const first = await h.runner(cfg);
    rows(Date.now() - 5_000, [[0.1, 10], [0.2, 10], [0.3, 10], [0.4, 10]]);
    await until(() => h.records.length === 1, 5000, 'the window');
    await first.stop();
    const second = await h.runner(cfg);
    await new Promise((r) => setTimeout(r, 1500)); // more than afterMs, nothing sent since the restart
    expect(h.alerts().filter((a) => a.kind === 'model_unavailable')).toEqual([]);
    expect(second.health().state).toBe('starting');
  });

  it('a device that sends rarely is not unavailable while its values are within their hold; past the hold it is', async () => {
    await h.runner(modelConfig({ schedule: { everyMs: 50 }, unavailable: { afterMs: 1000 }, window: { maxHoldMs: 60_000, latenessMs: 0 } }));
    await h.runner(modelConfig({ name: 'short-hold', schedule: { everyMs: 50 }, unavailable: { afterMs: 1000 }, window: { maxHoldMs: 500, latenessMs: 0 } }));
    const start = Date.now() - 4_500;
    rows(start, [[0.1, 10], [0.2, 10], [0.3, 10], [0.4, 10]]);
    await until(() => h.records.length === 2, 5000, 'the windows');
    // The short hold is passed about half a second after the last message, then afterMs: model_unavailable.
    await until(() => h.alerts().some((a) => a.kind === 'model_unavailable'), 5000, 'model_unavailable of the short hold');
    expect(h.alerts().filter((a) => a.kind === 'model_unavailable').map((a) => a.model?.name)).toEqual(['short-hold']);
    expect(h.alerts().find((a) => a.kind === 'model_unavailable')!.message).toMatch(/no new sample of the input tags for \d+ s of source time \(longer than window\.maxHoldMs 500 ms\)/);
  });
});
