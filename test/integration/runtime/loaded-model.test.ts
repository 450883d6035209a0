/**
 * Real models run by onnxruntime-node in a worker thread (from dist/: `npm run build` first).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoadedModel, ModelLoadError } from '../../../src/runtime/loaded-model.js';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { fixture, modelConfig, runtimeContext } from '../../unit/runtime/runtime-context.js';

let ctx: ReturnType<typeof runtimeContext>;
const loaded: LoadedModel[] = [];

beforeEach(() => {
  ctx = runtimeContext();
});
afterEach(async () => {
  await Promise.all(loaded.splice(0).map((m) => m.dispose()));
  ctx.cleanup();
});

async function load(cfg = modelConfig(), file = cfg.file): Promise<LoadedModel> {
  const model = await LoadedModel.load(cfg, await readModelFile(file), { stateDir: ctx.stateDir, log: ctx.log, onWorkerExit: () => {} });
  loaded.push(model);
  return model;
}

async function loadError(cfg = modelConfig(), file = cfg.file): Promise<ModelLoadError> {
  const err = await load(cfg, file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ModelLoadError);
  return err as ModelLoadError;
}

describe('LoadedModel (real onnxruntime-node, worker thread)', () => {
  it('runs the known-output model: outputs match the values computed by hand', async () => {
    const model = await load();
    expect(model.provider).toBe('cpu');
    expect(model.providerNodes).toEqual({ CPUExecutionProvider: 3 });
    expect(model.warmupMs).toHaveLength(3);
    // The window the runner would feed after z-scoring a: (x-0)/1 and b: (x-10)/2.
    const rows = [[0.1, 10], [0.2, 12], [0.3, 14], [0.95, 16]];
    const input = Float32Array.from(rows.flatMap(([a, b]) => [a!, (b! - 10) / 2]));
    const { outputs, runMs } = await model.infer(input);
    expect(runMs).toBeGreaterThan(0);
    expect(outputs.failure_probability!.dims).toEqual([1, 1]);
    expect(outputs.failure_probability!.data[0]).toBeCloseTo(0.95, 6);
    expect(outputs.window_mean!.dims).toEqual([1, 2]);
    expect(outputs.window_mean!.data[0]).toBeCloseTo((0.1 + 0.2 + 0.3 + 0.95) / 4, 6);
    expect(outputs.window_mean!.data[1]).toBeCloseTo((0 + 1 + 2 + 3) / 4, 6);
  });

  it('runs class probabilities with labels (softmax of the last row)', async () => {
    const model = await load(modelConfig({ file: fixture('classes.onnx'), inputs: ['x', 'y', 'z'], window: { samples: 1 } }));
    const { outputs } = await model.infer(Float32Array.of(1, 2, 3));
    const e = [1, 2, 3].map(Math.exp);
    const sum = e.reduce((a, b) => a + b);
    expect(Array.from(outputs.failure_mode_probabilities!.data).map((v) => v.toFixed(6))).toEqual(e.map((v) => (v / sum).toFixed(6)));
    expect(model.io.rule.labels).toEqual(['ok', 'wear', 'overheat']);
  });

  it('runs a model without Lineguard metadata: raw features, shapes from the session', async () => {
    const model = await load(modelConfig({ file: fixture('no-metadata.onnx') }));
    expect(model.file.metadata).toBeUndefined();
    expect(model.io.normalisation).toBeUndefined();
    expect(model.io.declaredInputShape).toBe('[batch, 4, 2]');
    const { outputs } = await model.infer(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(outputs.failure_probability!.data[0]).toBe(7);
  });

  it('[cuda, cpu] falls back to the CPU here, with a warning naming cuda and why', async () => {
    const model = await load(modelConfig({ executionProviders: ['cuda', 'cpu'] }));
    expect(model.provider).toBe('cpu');
    expect(model.fallbacks).toEqual([{ provider: 'cuda', error: expect.stringMatching(/Cuda|CUDA|cuda/) }]);
    const warning = ctx.logs.find((l) => l.level === 40 && l.provider === 'cuda');
    expect(warning).toMatchObject({ msg: 'execution provider cuda is unavailable here; trying the next one', next: 'cpu' });
  });

  it('[tensorrt, cuda, cpu] falls back through both GPU providers', async () => {
    const model = await load(modelConfig({ executionProviders: ['tensorrt', 'cuda', 'cpu'] }));
    expect(model.provider).toBe('cpu');
    expect(model.fallbacks.map((f) => f.provider)).toEqual(['tensorrt', 'cuda']);
    // The engine cache asked for tensorrt (engineCache defaults to true) leaves nothing behind when tensorrt did not load.
    expect(existsSync(join(ctx.stateDir, 'trt-cache', 'press1', model.file.sha256.slice(0, 16)))).toBe(false);
  });

  it('requireGpu: a clear error instead of the CPU', async () => {
    const err = await loadError(modelConfig({ executionProviders: ['cuda'], requireGpu: true }));
    expect(err.code).toBe('provider');
    expect(err.message).toMatch(/last-value\.onnx: requireGpu is set and no GPU provider loads here \(cuda: .+\)$/);
    expect(err.transient).toBe(true);
    // Even when the config (not checked here) also lists cpu, requireGpu never runs on it.
    const err2 = await loadError(modelConfig({ executionProviders: ['cuda', 'cpu'], requireGpu: true }));
    expect(err2.message).toMatch(/requireGpu is set but no GPU provider loads: cuda: /);
  });

  it('a shape mismatch names both shapes', async () => {
    const err = await loadError(modelConfig({ file: fixture('wrong-shape.onnx') }));
    expect(err.code).toBe('mismatch');
    expect(err.transient).toBe(false);
    expect(err.message).toContain('model input "input" has shape [batch, 8, 3] but the config expects [batch, 4, 2] (window.samples 4 × 2 input tags)');
  });

  it('a float64 input is refused by element type', async () => {
    const err = await loadError(modelConfig({ file: fixture('float64-input.onnx') }));
    expect(err.message).toContain('model input "input" is float64 [batch, 4, 2]; the config feeds float32');
  });

  it('a corrupt file is refused before a session is created', async () => {
    await expect(readModelFile(fixture('corrupt.onnx'))).rejects.toMatchObject({ code: 'corrupt' });
    // Bytes that pass the header check but not ONNX Runtime: a model whose graph was cut short.
    const good = await readModelFile(fixture('last-value.onnx'));
    const broken = { ...good, bytes: good.bytes.slice(0, 200) };
    const err = await LoadedModel.load(modelConfig(), broken, { stateDir: ctx.stateDir, log: ctx.log, onWorkerExit: () => {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'invalid', transient: false });
    expect((err as Error).message).toMatch(/ONNX Runtime cannot load the model: .*(protobuf|Protobuf|parse|ModelProto)/);
  });
});
