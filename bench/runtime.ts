/**
 * Runtime benchmark: per-inference latency of the gateway path (window read from the buffer + fresh samples,
 * feature assembly and normalisation, worker-thread round trip, rule) beside a bare `session.run` of the same
 * model on the same input in the same process; and the latency from publishing the sample that tips a rule to the
 * alert being committed in the outbox.
 *
 * Model: models/ai4i-fault/model.onnx when present, else test/fixtures/models/last-value.onnx.
 * Env: BENCH_RUNTIME_INFERENCES (default 3000), BENCH_RUNTIME_ALERTS (default 400).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import ort from 'onnxruntime-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BufferConfigSchema, type BufferConfig } from '../src/buffer/config.js';
import { SampleBuffer } from '../src/buffer/sample-buffer.js';
import type { ComponentContext } from '../src/core/component.js';
import { TagBus } from '../src/core/tag-bus.js';
import { ModelConfigSchema, type ModelConfig } from '../src/runtime/config.js';
import { ModelRunner, type InferenceRecord } from '../src/runtime/index.js';
import { readModelFile } from '../src/runtime/model-file.js';
import { result, type BenchResult, type Progress } from './result.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, HERE.includes('/dist/') ? '../..' : '..');

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const us = (ms: number): number => Number((ms * 1000).toFixed(1));

/** Two input rows: one the model scores low, one it scores high (alternating them raises and clears). */
interface Scenario {
  file: string;
  label: string;
  features: string[];
  samples: number;
  low: number[];
  high: number[];
  output: string;
  raiseAbove: number;
  clearBelow: number;
  mean: number[];
  std: number[];
}

async function scenario(): Promise<Scenario> {
  const ai4i = join(ROOT, 'models/ai4i-fault/model.onnx');
  if (existsSync(ai4i)) {
    const file = await readModelFile(ai4i);
    const meta = file.metadata!;
    return {
      file: ai4i,
      label: `ai4i-fault ${file.version}`,
      features: meta.inputs.map((i) => i.name),
      samples: meta.window ?? 1,
      // air K, process K, rpm, Nm, tool wear min, type: a normal cycle and a power failure (torque × speed too high).
      low: [300.8, 312.0, 1374, 50.2, 154, 0],
      high: [299.0, 310.3, 1303, 68.6, 111, 1],
      output: 'failure_probability',
      raiseAbove: 0.5,
      clearBelow: 0.5,
      mean: meta.inputs.map((i) => i.mean),
      std: meta.inputs.map((i) => i.std),
    };
  }
  return {
    file: join(ROOT, 'test/fixtures/models/last-value.onnx'),
    label: 'fixture last-value (models/ai4i-fault missing)',
    features: ['a', 'b'],
    samples: 4,
    low: [0.1, 10],
    high: [0.9, 10],
    output: 'failure_probability',
    raiseAbove: 0.5,
    clearBelow: 0.5,
    mean: [0, 10],
    std: [1, 2],
  };
}

export async function run(progress: Progress): Promise<BenchResult[]> {
  const inferences = envInt('BENCH_RUNTIME_INFERENCES', 3000);
  const alertsWanted = envInt('BENCH_RUNTIME_ALERTS', 400);
  const s = await scenario();
  progress(`model: ${s.label}`);
  const dir = mkdtempSync(join(tmpdir(), 'lg-bench-runtime-'));
  const ctx: ComponentContext = {
    log: pino({ level: 'silent' }), metrics: new Registry(), bus: new TagBus(), gatewayId: 'bench', stateDir: dir,
  };
  const buffer = new SampleBuffer(Value.Default(BufferConfigSchema, {}) as BufferConfig, ctx);
  let runner: ModelRunner | undefined;
  try {
    await buffer.start(new AbortController().signal);
    const tags = s.features.map((f) => `bench.${f}`);
    const cfg = Value.Default(ModelConfigSchema, {
      name: 'bench', file: s.file, inputs: tags, window: { samples: s.samples },
      schedule: { everyMs: 3_600_000, onNewData: true },
      alert: { output: s.output, raiseAbove: s.raiseAbove, clearBelow: s.clearBelow, recentSamples: 10 },
    }) as ModelConfig;
    let waiting: ((r: InferenceRecord) => void) | undefined;
    runner = new ModelRunner(cfg, ctx, {
      windows: buffer, outbox: buffer.outbox, baseDir: ROOT, onInference: (r) => waiting?.(r),
    });
    await runner.start(new AbortController().signal);
    if (runner.health().state !== 'up') throw new Error(`model not up: ${runner.health().reason}`);

    let ts = Date.now();
    const publish = (row: number[]): void => {
      ts += 1000;
      ctx.bus.publish(tags.map((tag, i) => ({ tag, ts, value: row[i]!, quality: 'good' as const, source: 'bench' })));
    };
    const next = (): Promise<InferenceRecord> => new Promise((r) => (waiting = r));
    for (let i = 0; i < s.samples; i++) publish(s.low);

    // 1. Gateway path, no alert transitions (the low row every time).
    progress(`gateway path: ${inferences} inferences`);
    const total: number[] = [];
    const inWorker: number[] = [];
    for (let i = 0; i < inferences + 100; i++) {
      const done = next();
      publish(s.low);
      const r = await done;
      if (i >= 100) {
        total.push(r.totalMs);
        inWorker.push(r.runMs);
      }
    }

    // 2. Sample to alert in the outbox: alternate rows, every inference raises or clears.
    progress(`sample → alert in outbox: ${alertsWanted} alerts`);
    const alertLatency: number[] = [];
    let publishedAt = 0;
    let enqueued: (() => void) | undefined;
    const unsubscribe = buffer.outbox.onEnqueue(() => {
      alertLatency.push(performance.now() - publishedAt);
      enqueued?.();
    });
    for (let i = 0; i < alertsWanted; i++) {
      const done = new Promise<void>((r) => (enqueued = r));
      publishedAt = performance.now();
      publish(i % 2 === 0 ? s.high : s.low);
      await done;
    }
    unsubscribe();

    // 3. Bare session.run on the same model and input, same thread count, in this thread.
    progress(`bare session.run: ${inferences} runs`);
    const session = await ort.InferenceSession.create(s.file, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    const row = s.low.map((v, i) => (v - s.mean[i]!) / s.std[i]!);
    const input = new ort.Tensor('float32', Float32Array.from(Array.from({ length: s.samples }, () => row).flat()), [1, s.samples, s.features.length]);
    const bare: number[] = [];
    for (let i = 0; i < inferences + 100; i++) {
      const t0 = performance.now();
      await session.run({ [session.inputNames[0]!]: input });
      if (i >= 100) bare.push(performance.now() - t0);
    }
    await session.release();

    for (const a of [total, inWorker, bare, alertLatency]) a.sort((x, y) => x - y);
    const notes = {
      model: s.label,
      provider: String(runner.health().details?.provider),
      workerRunP50_us: us(percentile(inWorker, 0.5)),
      workerRunP99_us: us(percentile(inWorker, 0.99)),
      sampleToOutboxP50_ms: Number(percentile(alertLatency, 0.5).toFixed(3)),
      sampleToOutboxP99_ms: Number(percentile(alertLatency, 0.99).toFixed(3)),
      alerts: alertLatency.length,
    };
    return [
      result('runtime.inference_p50', us(percentile(total, 0.5)), 'µs', 'lower', us(percentile(bare, 0.5)), 'bare session.run, same model and input', notes),
      result('runtime.inference_p99', us(percentile(total, 0.99)), 'µs', 'lower', us(percentile(bare, 0.99)), 'bare session.run, same model and input'),
    ];
  } finally {
    await runner?.stop();
    await buffer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
