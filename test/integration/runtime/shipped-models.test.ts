/**
 * The shipped models (models/<name>/model.onnx) through the whole gateway path: raw physical values published on
 * the bus, stored by the real buffer, normalised by the runtime with the model's metadata, run by onnxruntime-node
 * in the worker. Their outputs must match the PyTorch outputs recorded by the training script in reference.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LoadedModel } from '../../../src/runtime/loaded-model.js';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { modelConfig, ROOT, until } from '../../unit/runtime/runtime-context.js';
import { RuntimeHarness } from './runtime-harness.js';

interface Reference {
  model: string;
  version: string;
  tolerance: number;
  cases: Array<{
    description: string;
    /** One row as feature → value (window 1), or rows × features, oldest first, in metadata order. */
    raw: Record<string, number> | number[][];
    input: number[][];
    expected: Record<string, number[]>;
  }>;
}

const SHIPPED = ['ai4i-fault', 'cmapss-rul', 'steel-defect'].map((name) => ({
  name,
  model: join(ROOT, 'models', name, 'model.onnx'),
  reference: join(ROOT, 'models', name, 'reference.json'),
}));

let h: RuntimeHarness;
beforeEach(async () => {
  h = await new RuntimeHarness().start();
});
afterEach(async () => {
  await h.stop();
});

for (const shipped of SHIPPED) {
  const present = existsSync(shipped.model) && existsSync(shipped.reference);
  describe.skipIf(!present)(`shipped model ${shipped.name}`, () => {
    it('bare session (worker): the reference inputs give the reference outputs', async () => {
      const ref = JSON.parse(readFileSync(shipped.reference, 'utf8')) as Reference;
      const file = await readModelFile(shipped.model);
      const meta = file.metadata!;
      const cfg = modelConfig({
        name: shipped.name, file: shipped.model, inputs: meta.inputs.map((i) => `t.${i.name}`), window: { samples: meta.window ?? 1 },
      });
      const model = await LoadedModel.load(cfg, file, { stateDir: h.ctx.stateDir, log: h.ctx.log, onWorkerExit: () => {} });
      try {
        expect(meta.version).toBe(ref.version);
        for (const c of ref.cases) {
          const { outputs } = await model.infer(Float32Array.from(c.input.flat()));
          for (const [name, expected] of Object.entries(c.expected)) {
            const got = Array.from(outputs[name]!.data);
            got.forEach((v, i) => expect(Math.abs(v - expected[i]!), `${c.description}: ${name}[${i}]`).toBeLessThanOrEqual(ref.tolerance));
          }
        }
      } finally {
        await model.dispose();
      }
    });

    it('gateway path: raw values on the bus → buffer → normalisation → worker give the reference outputs', async () => {
      const ref = JSON.parse(readFileSync(shipped.reference, 'utf8')) as Reference;
      const file = await readModelFile(shipped.model);
      const meta = file.metadata!;
      const tags = meta.inputs.map((i) => `t.${i.name}`);
      const samples = meta.window ?? 1;
      const recommended = meta.recommendedAlert as { output?: string; raiseAbove?: number; clearBelow?: number; raiseBelow?: number; clearAbove?: number };
      await h.runner(modelConfig({
        name: shipped.name, file: shipped.model, inputs: tags, window: { samples }, schedule: { onNewData: true },
        alert: {
          output: recommended.output, raiseAbove: recommended.raiseAbove, clearBelow: recommended.clearBelow,
          raiseBelow: recommended.raiseBelow, clearAbove: recommended.clearAbove,
        },
      }));
      let ts = 0;
      for (const c of ref.cases) {
        const rows = Array.isArray(c.raw) ? c.raw : [meta.inputs.map((i) => (c.raw as Record<string, number>)[i.name]!)];
        expect(rows).toHaveLength(samples);
        const before = h.records.length;
        for (const row of rows) h.publish((ts += 1000), tags, row);
        await until(() => h.records.some((r) => r.ts === ts), 5000, `inference for ${c.description}`);
        expect(h.records.length).toBeGreaterThan(before);
        const record = h.records.find((r) => r.ts === ts)!;
        for (const [name, expected] of Object.entries(c.expected)) {
          const got = Array.from(record.outputs[name]!.data);
          got.forEach((v, i) => expect(Math.abs(v - expected[i]!), `${c.description}: ${name}[${i}]`).toBeLessThanOrEqual(ref.tolerance));
        }
      }
    });
  });
}
