/**
 * The shipped ONNX models (models/ai4i-fault, models/cmapss-rul, models/steel-defect): contract, metadata, reference outputs and metrics.
 * Runs onnxruntime-node on CPU only; no Python. The numbers in the model cards come from models/evaluate.mjs, and the
 * last test of each model recomputes them from the committed model and data.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as ort from 'onnxruntime-node';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  MODELS_DIR,
  DATA_DIR,
  SHIPPED,
  averagePrecision,
  extractMetricsBlock,
  normalise,
  readLineguardMetadata,
  readOnnxModelInfo,
  renderMetricsBlock,
  verifyChecksums,
  type LineguardMetadata,
  type MetricsFile,
} from '../../../models/evaluate.mjs';

interface ReferenceCase {
  description: string;
  raw: Record<string, number> | number[][];
  input: number[][];
  expected: Record<string, number[]>;
}
interface ReferenceFile {
  model: string;
  version: string;
  inputShape: [number, number, number];
  tolerance: number;
  cases: ReferenceCase[];
}

interface ModelSpec {
  name: keyof typeof SHIPPED;
  task: 'classification' | 'regression';
  window: number;
  features: number;
  outputs: Record<string, number>;
}

const SPECS: ModelSpec[] = [
  {
    name: 'ai4i-fault',
    task: 'classification',
    window: 1,
    features: 6,
    outputs: { failure_probability: 1, failure_mode_probabilities: 4 },
  },
  { name: 'cmapss-rul', task: 'regression', window: 30, features: 14, outputs: { rul_cycles: 1 } },
  { name: 'steel-defect', task: 'classification', window: 1, features: 27, outputs: { defect_class_probabilities: 7 } },
];

const SAMPLE_PERIOD: Record<ModelSpec['name'], string> = { 'ai4i-fault': '1 process', 'cmapss-rul': '1 cycle', 'steel-defect': '1 defect' };

/** The card metrics that the training (PyTorch) and onnxruntime must agree on. */
const TRAINED_KEYS: Record<ModelSpec['name'], string[]> = {
  'ai4i-fault': ['precision', 'recall', 'f1', 'prAuc'],
  'cmapss-rul': ['rmse', 'nasaScore'],
  'steel-defect': ['accuracy', 'macroF1'],
};

const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  logSeverityLevel: 3,
};

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Raw physical rows [window][features] of a reference case, in the metadata's input order. */
function rawRows(meta: LineguardMetadata, c: ReferenceCase): number[][] {
  if (Array.isArray(c.raw)) return c.raw;
  const raw = c.raw;
  return [meta.inputs.map((i) => {
    const v = raw[i.name];
    if (v === undefined) throw new Error(`reference case lacks ${i.name}`);
    return v;
  })];
}

function batchTensor(cases: ReferenceCase[], window: number, features: number): ort.Tensor {
  const data = new Float32Array(cases.length * window * features);
  cases.forEach((c, i) => data.set(c.input.flat(), i * window * features));
  return new ort.Tensor('float32', data, [cases.length, window, features]);
}

/**
 * Deep comparison that allows float noise across CPUs: counts must match exactly, metrics to 1e-3
 * (scores that sum exponentials over 100 engines, to 0.05).
 */
function expectClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    const tol = Number.isInteger(expected) && Number.isInteger(actual) && !/score/i.test(path) ? 0 : /score/i.test(path) ? 0.05 : 1e-3;
    expect(Math.abs(actual - expected), path).toBeLessThanOrEqual(tol);
  } else if (expected !== null && typeof expected === 'object') {
    expect(actual, path).toBeTypeOf('object');
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    expect(Object.keys(a).sort(), path).toEqual(Object.keys(e).sort());
    for (const key of Object.keys(e)) expectClose(a[key], e[key], `${path}.${key}`);
  } else {
    expect(actual, path).toEqual(expected);
  }
}

describe.each(SPECS)('shipped model $name', (spec) => {
  const dir = join(MODELS_DIR, spec.name);
  const modelPath = join(dir, 'model.onnx');
  let session: ort.InferenceSession;
  let meta: LineguardMetadata;
  let reference: ReferenceFile;

  beforeAll(async () => {
    session = await ort.InferenceSession.create(modelPath, SESSION_OPTIONS);
    meta = readLineguardMetadata(modelPath);
    reference = readJson<ReferenceFile>(join(dir, 'reference.json'));
  });

  afterAll(async () => {
    await session?.release();
  });

  it('has one float32 input [batch, window, features] and float32 outputs [batch, k]', () => {
    expect(session.inputNames).toEqual(['input']);
    expect(session.inputMetadata).toEqual([
      { name: 'input', isTensor: true, type: 'float32', shape: ['batch', spec.window, spec.features] },
    ]);
    expect(session.outputNames).toEqual(Object.keys(spec.outputs));
    expect(session.outputMetadata).toEqual(
      Object.entries(spec.outputs).map(([name, k]) => ({ name, isTensor: true, type: 'float32', shape: ['batch', k] })),
    );
  });

  it('carries producer, doc string, an opset <= 17 and valid lineguard metadata', () => {
    const info = readOnnxModelInfo(readFileSync(modelPath));
    expect(info.producerName).not.toBe('');
    expect(info.docString).toContain(spec.name);
    expect(info.opsetImports.length).toBeGreaterThan(0);
    for (const opset of info.opsetImports) {
      expect(opset.domain).toBe('');
      expect(opset.version).toBeLessThanOrEqual(17);
    }
    expect(Object.keys(info.metadataProps)).toEqual(['lineguard']);

    expect(meta.schema).toBe(1);
    expect(meta.name).toBe(spec.name);
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(meta.task).toBe(spec.task);
    expect(meta.window).toBe(spec.window);
    expect(meta.samplePeriod).toBe(SAMPLE_PERIOD[spec.name]);
    // None was trained on a time grid: the period is null (check-config's hint stays silent) and the basis says why.
    expect(meta.samplePeriodMs).toBeNull();
    expect(meta.sampleBasis).toMatch(/one row per/);
    expect(meta.inputOrder).toMatch(/tag order = feature order/);
    expect(meta.inputs).toHaveLength(spec.features);
    expect(new Set(meta.inputs.map((i) => i.name)).size).toBe(spec.features);
    for (const input of meta.inputs) {
      expect(input.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(input.unit).not.toBe('');
      expect(input.description).not.toBe('');
      expect(Number.isFinite(input.mean)).toBe(true);
      expect(input.std).toBeGreaterThan(0);
      // Training statistics in raw units, ordered: min <= p01 <= ... <= p99 <= max, the mean inside.
      const q = input.quantiles ?? {};
      const order = [input.min, q.p01, q.p05, q.p25, q.p50, q.p75, q.p95, q.p99, input.max];
      order.forEach((v) => expect(Number.isFinite(v), input.name).toBe(true));
      for (let j = 1; j < order.length; j++) expect(order[j]! >= order[j - 1]!, `${input.name} quantiles in order`).toBe(true);
      expect(input.mean).toBeGreaterThanOrEqual(input.min!);
      expect(input.mean).toBeLessThanOrEqual(input.max!);
    }
    expect(meta.outputs.map((o) => o.name)).toEqual(Object.keys(spec.outputs));
    for (const output of meta.outputs) {
      const k = spec.outputs[output.name];
      if (output.labels) expect(output.labels).toHaveLength(k ?? -1);
      expect(['probability', 'probabilities', 'regression']).toContain(output.kind);
    }
    const alert = meta.recommendedAlert;
    expect(Object.keys(spec.outputs)).toContain(alert.output);
    if ('raiseAbove' in alert) {
      expect(alert.raiseAbove).toBeGreaterThan(0);
      expect(alert.raiseAbove).toBeLessThan(1);
      expect(alert.clearBelow).toBeLessThan(alert.raiseAbove);
    } else {
      expect(alert.raiseBelow).toBeGreaterThan(0);
      expect(alert.clearAbove).toBeGreaterThan(alert.raiseBelow);
    }
    expect(meta.training.data).not.toBe('');
    expect(meta.training.license).not.toBe('');
    expect(Object.keys(meta.training.metrics).length).toBeGreaterThan(0);
  });

  it('reference inputs are the raw values normalised with the metadata', () => {
    expect(reference.model).toBe(spec.name);
    expect(reference.version).toBe(meta.version);
    expect(reference.cases.length).toBeGreaterThanOrEqual(5);
    expect(reference.cases.length).toBeLessThanOrEqual(10);
    expect(reference.inputShape).toEqual([reference.cases.length, spec.window, spec.features]);
    for (const c of reference.cases) {
      const mine = normalise(meta, rawRows(meta, c));
      const stored = c.input.flat();
      expect(stored).toHaveLength(spec.window * spec.features);
      stored.forEach((v, i) => expect(Math.abs((mine[i] ?? NaN) - v)).toBeLessThan(1e-5));
    }
  });

  it('reproduces the PyTorch outputs on the reference inputs within 1e-4', async () => {
    const cases = reference.cases;
    const out = await session.run({ input: batchTensor(cases, spec.window, spec.features) });
    for (const [name, k] of Object.entries(spec.outputs)) {
      const tensor = out[name];
      expect(tensor?.dims).toEqual([cases.length, k]);
      const data = tensor?.data as Float32Array;
      cases.forEach((c, i) => {
        const expected = c.expected[name];
        expect(expected, `${c.description}: ${name}`).toHaveLength(k);
        expected?.forEach((e, j) => {
          expect(Math.abs((data[i * k + j] ?? NaN) - e), `${c.description}: ${name}[${j}]`).toBeLessThanOrEqual(1e-4);
        });
      });
    }
  });

  it('gives the same outputs for batch 1 as inside a batch', async () => {
    const cases = reference.cases;
    const batch = await session.run({ input: batchTensor(cases, spec.window, spec.features) });
    for (const [i, c] of cases.entries()) {
      const single = await session.run({ input: batchTensor([c], spec.window, spec.features) });
      for (const [name, k] of Object.entries(spec.outputs)) {
        const a = single[name]?.data as Float32Array;
        const b = batch[name]?.data as Float32Array;
        for (let j = 0; j < k; j++) expect(Math.abs((a[j] ?? NaN) - (b[i * k + j] ?? NaN))).toBeLessThanOrEqual(1e-5);
      }
    }
  });

  it('documents the metadata in its model card (inputs, normalisation, recommended alert)', () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    meta.inputs.forEach((input, i) => {
      expect(readme).toContain(`| ${i} | \`${input.name}\` | ${input.unit} | ${input.mean} | ${input.std} |`);
    });
    expect(readme).toContain(JSON.stringify(meta.recommendedAlert));
    for (const output of meta.outputs) expect(readme).toContain(`\`${output.name}\``);
  });

  it('recomputes the held-out metrics of its model card from the committed model and data', { timeout: 20_000 }, async () => {
    const stored = readJson<MetricsFile>(join(dir, 'metrics.json'));
    const fresh = await SHIPPED[spec.name]({ session });
    // Same model file as the card describes, and the same numbers (to rounding).
    expect(stored.modelSha256).toMatch(/^[0-9a-f]{64}$/);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(readFileSync(modelPath)).digest('hex')).toBe(stored.modelSha256);
    expectClose(fresh, stored.evaluation, 'evaluation');
    // The card shows exactly the block evaluate.mjs renders from metrics.json.
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(extractMetricsBlock(readme)).toBe(renderMetricsBlock(stored));
    // PyTorch's numbers at training time (metadata) agree with onnxruntime's.
    const trained = meta.training.metrics as Record<string, number>;
    const keys = TRAINED_KEYS[spec.name];
    const freshNumbers = fresh as unknown as Record<string, number>;
    for (const key of keys) {
      expect(Math.abs((freshNumbers[key] ?? NaN) - (trained[key] ?? NaN)), key).toBeLessThanOrEqual(
        key === 'nasaScore' ? 0.05 : 1e-3,
      );
    }
  });
});

describe('shipped model data', () => {
  it('the committed datasets match their SHA256SUMS', () => {
    expect(verifyChecksums(join(DATA_DIR, 'ai4i2020')).sort()).toEqual(['PROVENANCE.md', 'ai4i2020.csv']);
    expect(verifyChecksums(join(DATA_DIR, 'nasa-cmapss-fd001')).sort()).toEqual([
      'PROVENANCE.md',
      'RUL_FD001.txt',
      'readme.txt',
      'test_FD001.txt.gz',
      'train_FD001.txt.gz',
    ]);
    expect(verifyChecksums(join(DATA_DIR, 'uci-steel-plates-faults')).sort()).toEqual(['Faults.NNA', 'Faults27x7_var', 'PROVENANCE.md']);
  });

  it('no evaluation or training code reads outside the repository', () => {
    const sources = [
      join(MODELS_DIR, 'evaluate.mjs'),
      ...readdirSync(join(MODELS_DIR, 'training')).filter((f) => /\.(py|sh)$/.test(f)).map((f) => join(MODELS_DIR, 'training', f)),
    ];
    for (const file of sources) expect(readFileSync(file, 'utf8'), file).not.toMatch(/shared\/data|\.\.\/shared/);
  });

  it('average precision follows the scikit-learn definition', () => {
    expect(averagePrecision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])).toBeCloseTo((1 + 2 / 3) / 2, 12);
    expect(averagePrecision([0, 0], [0.2, 0.1])).toBeNull();
  });
});

describe('model card claims', () => {
  const card = (name: string): string => readFileSync(join(MODELS_DIR, name, 'README.md'), 'utf8');
  const metrics = (name: string): MetricsFile => readJson<MetricsFile>(join(MODELS_DIR, name, 'metrics.json'));

  it('steel-defect reaches the issue-16 goal (accuracy >= 0.80 on its test part) and has a per-class table', () => {
    const e = metrics('steel-defect').evaluation as unknown as { accuracy: number; perClass: Record<string, { support: number }> };
    expect(e.accuracy).toBeGreaterThanOrEqual(0.8);
    expect(Object.keys(e.perClass)).toEqual(['Pastry', 'Z_Scratch', 'K_Scatch', 'Stains', 'Dirtiness', 'Bumps', 'Other_Faults']);
    expect(Object.values(e.perClass).reduce((a, c) => a + c.support, 0)).toBe(388);
    expect(card('steel-defect')).toMatch(/\| Other_Faults \| 135 \|/);
  });

  it('every recommended steel rule is a quality_defect rule on one class (its label goes into the alert)', () => {
    const meta = readLineguardMetadata(join(MODELS_DIR, 'steel-defect', 'model.onnx'));
    const rules = meta.recommendedAlerts ?? [];
    expect(rules.map((r) => r.outputIndex)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const r of rules) {
      expect(r.kind).toBe('quality_defect');
      expect(r.output).toBe('defect_class_probabilities');
      expect(r.clearBelow).toBeLessThan(r.raiseAbove);
    }
    expect(meta.recommendedAlert).toEqual(rules[0]);
  });

  it('cmapss-rul: no leakage claim, published anchors cited, lead times and NASA score reported', () => {
    const text = card('cmapss-rul');
    expect(text).not.toMatch(/^Results below about 12 would suggest leakage/m);
    for (const anchor of ['10.97', '11.44', '11.57', '11.80', '12.75']) expect(text).toContain(anchor);
    expect(text).toMatch(/Lead time under the recommended rule/);
    const e = metrics('cmapss-rul').evaluation as unknown as { nasaScore: number; leadTimes: { enginesDue: number; flappingEngines: number } };
    expect(e.nasaScore).toBeGreaterThan(0);
    expect(e.leadTimes.enginesDue).toBeGreaterThan(0);
    expect(e.leadTimes.flappingEngines).toBe(0);
  });

  it('ai4i-fault states its ceiling on the time-ordered split and why published ~0.895 is not comparable', () => {
    const text = card('ai4i-fault');
    expect(text).toContain('0.836');
    expect(text).toContain('0.895');
    expect(text).toMatch(/stratified/);
  });

  it('no card promises byte-identical retraining across machines', () => {
    for (const name of ['ai4i-fault', 'cmapss-rul', 'steel-defect']) {
      const text = card(name);
      expect(text, name).not.toMatch(/reproduces `model\.onnx` byte for byte/);
      expect(text, name).toMatch(/not\*{0,2} (guaranteed )?byte-identical/);
    }
  });
});
