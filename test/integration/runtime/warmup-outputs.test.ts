/**
 * A model whose warm-up outputs are NaN or infinite never goes live: a hot swap to it is refused and the running
 * version keeps serving (real onnxruntime-node in a worker thread, from dist/: `npm run build` first).
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoadedModel, ModelLoadError } from '../../../src/runtime/loaded-model.js';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { ModelSlot } from '../../../src/runtime/model-slot.js';
import { RuntimeMetrics } from '../../../src/runtime/runtime-metrics.js';
import { fixture, metricValue, modelConfig, runtimeContext } from '../../unit/runtime/runtime-context.js';

let ctx: ReturnType<typeof runtimeContext>;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(() => {
  ctx = runtimeContext();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  ctx.cleanup();
});

async function loadError(name: string): Promise<ModelLoadError> {
  const cfg = modelConfig({ file: fixture(name) });
  const err = await LoadedModel.load(cfg, await readModelFile(cfg.file), { stateDir: ctx.stateDir, log: ctx.log, onWorkerExit: () => {} })
    .then(async (m) => {
      await m.dispose();
      return undefined;
    }, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelLoadError);
  return err as ModelLoadError;
}

describe('warm-up outputs must be finite', () => {
  it('refuses a model that is NaN one std above the mean although it is finite on zeros', async () => {
    const err = await loadError('nan-when-high.onnx');
    expect(err).toMatchObject({ code: 'nonfinite', transient: false });
    expect(err.message).toMatch(
      /nan-when-high\.onnx: the warm-up inference with all inputs one std above their mean returned NaN in the alert rule's output "failure_probability" \(element 0\)/,
    );
  });

  it('refuses a model with an infinite output that is not the rule\'s', async () => {
    const err = await loadError('inf-output.onnx');
    expect(err.code).toBe('nonfinite');
    expect(err.message).toMatch(/with all inputs at their mean returned Infinity in output "window_mean" \(element 0\)/);
  });

  it('loads a model that is finite on both warm-up inputs (NaN only on real data is the run-time check\'s job)', async () => {
    const cfg = modelConfig({ file: fixture('nan-output.onnx') });
    const model = await LoadedModel.load(cfg, await readModelFile(cfg.file), { stateDir: ctx.stateDir, log: ctx.log, onWorkerExit: () => {} });
    cleanups.push(() => model.dispose());
    expect(model.warmupMs).toHaveLength(3);
  });

  it('hot swap to a NaN model is refused: the old version keeps serving, the slot says why', async () => {
    const path = join(ctx.stateDir, 'press.onnx');
    copyFileSync(fixture('last-value.onnx'), path);
    const slot = new ModelSlot({
      cfg: modelConfig({ file: path, watch: false }), path, stateDir: ctx.stateDir, log: ctx.log, metrics: new RuntimeMetrics(ctx.metrics, 'press1'),
    });
    cleanups.push(() => slot.stop());
    await slot.reload();
    const v1 = slot.model!;
    expect(v1.file.version).toMatch(/^1\.0\.0\+/);

    copyFileSync(fixture('nan-when-high.onnx'), path);
    await slot.reload();
    expect(slot.model).toBe(v1);
    expect(slot.failure).toMatchObject({ code: 'nonfinite', message: expect.stringContaining('returned NaN') });
    expect(ctx.logs.find((l) => l.msg === `model cannot be loaded; still serving version ${v1.file.version}`)).toBeDefined();
    expect(await metricValue(ctx.metrics, 'lineguard_model_loads_total', { model: 'press1', result: 'failed' })).toBe(1);
    // The live model still answers.
    const { outputs } = await v1.infer(Float32Array.of(0, 0, 0, 0, 0, 0, 0.7, 0));
    expect(outputs.failure_probability!.data[0]).toBeCloseTo(0.7, 6);

    // The good file back: the failure is cleared without a reload of the running version.
    copyFileSync(fixture('last-value.onnx'), path);
    await slot.reload();
    expect(slot.model).toBe(v1);
    expect(slot.failure).toBeUndefined();
  });
});
