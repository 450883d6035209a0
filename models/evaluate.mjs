#!/usr/bin/env node
/**
 * Recomputes the held-out metrics of the shipped models from the committed ONNX files and the committed data, with
 * onnxruntime-node only (no Python), exactly as the gateway would feed them: raw physical values, z-scored with the
 * mean/std from the model's `lineguard` metadata, as float32 [batch, window, features].
 *
 *   node models/evaluate.mjs            print the metrics (and the measured latency) of every shipped model
 *   node models/evaluate.mjs --write    also write models/<model>/metrics.json and the metrics block of each README.md
 *
 * The module has no side effects on import; test/unit/models/shipped-models.test.ts uses its functions.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';

export const MODELS_DIR = dirname(fileURLToPath(import.meta.url));
export const DATA_DIR = join(MODELS_DIR, 'data');

/** The test part of AI4I 2020: rows 8001..10000 in UDI (process) order (rows 1-7000 train, 7001-8000 validation). */
export const AI4I_TEST_FIRST_UDI = 8001;
export const AI4I_MODES = ['HDF', 'PWF', 'OSF', 'TWF'];
const AI4I_INPUTS = ['air_temperature', 'process_temperature', 'rotational_speed', 'torque', 'tool_wear', 'product_type'];
const AI4I_TYPE_CODE = { L: 0, M: 1, H: 2 };

/** C-MAPSS FD001: input name -> sensor number (sensor n is column 5 + n, 1-based, of the data files). */
export const CMAPSS_SENSORS = {
  t24: 2, t30: 3, t50: 4, p30: 7, nf: 8, nc: 9, ps30: 11, phi: 12, nrf: 13, nrc: 14, bpr: 15, htbleed: 17, w31: 20, w32: 21,
};
export const RUL_CAP = 125;

/** Steel Plates Faults (UCI 198): the 7 classes, in the model's output order. */
export const STEEL_CLASSES = ['Pastry', 'Z_Scratch', 'K_Scatch', 'Stains', 'Dirtiness', 'Bumps', 'Other_Faults'];

// ----------------------------------------------------------------------------------------------------------------
// ONNX model header and metadata. onnxruntime-node does not expose metadata_props, so the gateway reads the
// protobuf itself (src/runtime/onnx-model-proto.ts); this script uses that same reader, compiled by `npm run build`.
const proto = await import('../dist/src/runtime/onnx-model-proto.js').catch((err) => {
  throw new Error(`models/evaluate.mjs uses the gateway's ONNX reader from dist/: run \`npm run build\` first (${err.message})`);
});

/**
 * Reads the ModelProto header of an ONNX file: producer, doc string, opsets and metadata_props.
 * @param {Uint8Array} bytes
 */
export function readOnnxModelInfo(bytes) {
  const header = proto.readOnnxModelHeader(bytes);
  return {
    irVersion: header.irVersion,
    producerName: header.producerName,
    producerVersion: header.producerVersion,
    modelVersion: header.modelVersion,
    docString: header.docString,
    opsetImports: header.opsets,
    metadataProps: header.metadata,
  };
}

/** The parsed `lineguard` metadata JSON of a model file. */
export function readLineguardMetadata(modelPath) {
  const info = readOnnxModelInfo(readFileSync(modelPath));
  const text = info.metadataProps.lineguard;
  if (text === undefined) throw new Error(`${modelPath} has no 'lineguard' metadata`);
  return JSON.parse(text);
}

/**
 * z-scores raw rows [window][features] (oldest first) with the metadata's inputs into a Float32Array, row-major,
 * exactly as the gateway does: x' = (x - mean) / std.
 */
export function normalise(meta, rows) {
  const f = meta.inputs.length;
  const out = new Float32Array(rows.length * f);
  rows.forEach((row, t) => {
    if (row.length !== f) throw new RangeError(`row ${t} has ${row.length} values, the model wants ${f}`);
    for (let j = 0; j < f; j++) out[t * f + j] = (row[j] - meta.inputs[j].mean) / meta.inputs[j].std;
  });
  return out;
}

export async function createSession(modelPath) {
  return ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
}

// ----------------------------------------------------------------------------------------------------------------
// Data (only the committed copies under models/data)

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Checks each file listed in a dataset's SHA256SUMS that is present (the .txt originals are committed gzipped). */
export function verifyChecksums(datasetDir) {
  const checked = [];
  for (const line of readFileSync(join(datasetDir, 'SHA256SUMS'), 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (!m) continue;
    const [, digest, name] = m;
    let bytes;
    try {
      bytes = readFileSync(join(datasetDir, name));
    } catch {
      continue;
    }
    if (sha256(bytes) !== digest) throw new Error(`checksum mismatch: ${join(datasetDir, name)}`);
    checked.push(name);
  }
  return checked;
}

/** AI4I 2020 rows in UDI order. The file is UTF-8 with a BOM and CRLF line endings. */
export function loadAi4i(dir = join(DATA_DIR, 'ai4i2020')) {
  verifyChecksums(dir);
  let text = readFileSync(join(dir, 'ai4i2020.csv'), 'utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = lines[0].split(',');
  if (header[0] !== 'UDI' || header[8] !== 'Machine failure') throw new Error('unexpected AI4I header');
  return lines.slice(1).map((line) => {
    const c = line.split(',');
    const type = AI4I_TYPE_CODE[c[2]];
    if (type === undefined) throw new Error(`unknown product type ${c[2]}`);
    return {
      udi: Number(c[0]),
      productId: c[1],
      raw: [Number(c[3]), Number(c[4]), Number(c[5]), Number(c[6]), Number(c[7]), type],
      machineFailure: Number(c[8]),
      TWF: Number(c[9]), HDF: Number(c[10]), PWF: Number(c[11]), OSF: Number(c[12]), RNF: Number(c[13]),
    };
  });
}

function parseCmapssTable(text) {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0).map((l) => l.split(/\s+/).map(Number));
}

/** C-MAPSS FD001 test set: per unit the rows (cycle order), and the true RUL after each unit's last row. */
export function loadCmapssTest(dir = join(DATA_DIR, 'nasa-cmapss-fd001')) {
  verifyChecksums(dir);
  const rows = parseCmapssTable(gunzipSync(readFileSync(join(dir, 'test_FD001.txt.gz'))).toString('ascii'));
  const rul = parseCmapssTable(readFileSync(join(dir, 'RUL_FD001.txt'), 'ascii')).map((r) => r[0]);
  const units = new Map();
  for (const r of rows) {
    const u = r[0];
    if (!units.has(u)) units.set(u, []);
    units.get(u).push(r);
  }
  return [...units.entries()].sort((a, b) => a[0] - b[0]).map(([unit, rs], i) => ({ unit, rows: rs, trueRul: rul[i] }));
}

/**
 * The last `window` cycles of a unit as [window][features] in the metadata's input order. An engine with fewer cycles
 * is padded at the start by repeating its first cycle (edge padding, as in training).
 */
export function cmapssWindow(meta, rows, window = meta.window) {
  const cols = meta.inputs.map((inp) => {
    const sensor = CMAPSS_SENSORS[inp.name];
    if (sensor === undefined) throw new Error(`unknown C-MAPSS input ${inp.name}`);
    return 4 + sensor; // 0-based: unit, cycle, 3 settings, then sensor 1 at index 5
  });
  const last = rows.slice(-window);
  while (last.length < window) last.unshift(last[0]);
  return last.map((r) => cols.map((c) => r[c]));
}

/**
 * Steel Plates Faults: every defect (1-based row, features by UCI column name, class index). Faults.NNA is
 * tab-separated, each line in double quotes, CRLF; Faults27x7_var holds the 34 column names.
 */
export function loadSteel(dir = join(DATA_DIR, 'uci-steel-plates-faults')) {
  verifyChecksums(dir);
  const names = readFileSync(join(dir, 'Faults27x7_var'), 'ascii').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (names.slice(27).join() !== STEEL_CLASSES.join()) throw new Error('unexpected Steel Plates class columns');
  return readFileSync(join(dir, 'Faults.NNA'), 'ascii').split(/\r?\n/).map((l) => l.trim().replace(/^"|"$/g, '')).filter(Boolean)
    .map((line, i) => {
      const v = line.split('\t').map(Number);
      if (v.length !== 34) throw new Error(`Faults.NNA row ${i + 1}: ${v.length} values`);
      return { row: i + 1, features: Object.fromEntries(names.slice(0, 27).map((n, j) => [n, v[j]])), label: v.slice(27).indexOf(1) };
    });
}

/** UCI column name of a model input: the same letters, case and separators ignored (type_of_steel_a300 = TypeOfSteel_A300). */
function steelColumn(features, inputName) {
  const squash = (x) => x.toLowerCase().replace(/[^a-z0-9]/g, '');
  const col = Object.keys(features).find((k) => squash(k) === squash(inputName));
  if (col === undefined) throw new Error(`unknown Steel Plates input ${inputName}`);
  return col;
}

// ----------------------------------------------------------------------------------------------------------------
// Metrics (same definitions as models/training/common.py)

export function binaryCounts(y, p, threshold) {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < y.length; i++) {
    const pred = p[i] >= threshold;
    if (pred && y[i] === 1) tp++;
    else if (pred) fp++;
    else if (y[i] === 1) fn++;
  }
  return { tp, fp, fn };
}

export function precisionRecallF1({ tp, fp, fn }) {
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/** PR-AUC as average precision: sum over distinct thresholds of (R_n - R_{n-1}) * P_n (scikit-learn's definition). */
export function averagePrecision(y, p) {
  const npos = y.reduce((a, b) => a + b, 0);
  if (npos === 0) return null;
  const order = [...p.keys()].sort((a, b) => p[b] - p[a]);
  let ap = 0;
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let i = 0;
  while (i < order.length) {
    const v = p[order[i]];
    while (i < order.length && p[order[i]] === v) {
      if (y[order[i]] === 1) tp++;
      else fp++;
      i++;
    }
    const recall = tp / npos;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
  }
  return ap;
}

export function nasaScore(pred, truth) {
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i] - truth[i];
    s += d < 0 ? Math.exp(-d / 13) - 1 : Math.exp(d / 10) - 1;
  }
  return s;
}

export function rmse(pred, truth) {
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += (pred[i] - truth[i]) ** 2;
  return Math.sqrt(s / pred.length);
}

const r4 = (x) => (x === null ? null : Math.round(x * 1e4) / 1e4);

// ----------------------------------------------------------------------------------------------------------------
// Evaluations

/** AI4I: failure P/R/F1 at the recommended threshold and PR-AUC on the test part; per-mode at 0.5. */
export async function evaluateAi4i({ modelPath = join(MODELS_DIR, 'ai4i-fault', 'model.onnx'), session } = {}) {
  const meta = readLineguardMetadata(modelPath);
  if (meta.inputs.map((i) => i.name).join() !== AI4I_INPUTS.join()) throw new Error('AI4I input order changed');
  const rows = loadAi4i().filter((r) => r.udi >= AI4I_TEST_FIRST_UDI);
  const sess = session ?? (await createSession(modelPath));
  const input = new ort.Tensor('float32', normalise(meta, rows.map((r) => r.raw)), [rows.length, 1, meta.inputs.length]);
  const out = await sess.run({ input });
  const pFail = Array.from(out.failure_probability.data);
  const pModes = out.failure_mode_probabilities.data;
  const k = out.failure_mode_probabilities.dims[1];
  const threshold = meta.recommendedAlert.raiseAbove;
  const y = rows.map((r) => r.machineFailure);
  const counts = binaryCounts(y, pFail, threshold);
  const modes = {};
  meta.outputs[1].labels.forEach((label, j) => {
    const ym = rows.map((r) => r[label]);
    const pm = rows.map((_, i) => pModes[i * k + j]);
    const positives = ym.reduce((a, b) => a + b, 0);
    const c = binaryCounts(ym, pm, 0.5);
    const prf = precisionRecallF1(c);
    modes[label] = { positives, ...c, precision: r4(prf.precision), recall: r4(prf.recall), f1: r4(prf.f1), prAuc: r4(averagePrecision(ym, pm)) };
  });
  const prf = precisionRecallF1(counts);
  if (!session) await sess.release();
  return {
    model: meta.name,
    version: meta.version,
    split: `test part: UDI ${AI4I_TEST_FIRST_UDI}-${rows[rows.length - 1].udi} (process order; train 1-7000, validation 7001-8000)`,
    testRows: rows.length,
    testFailures: y.reduce((a, b) => a + b, 0),
    threshold,
    ...counts,
    precision: r4(prf.precision),
    recall: r4(prf.recall),
    f1: r4(prf.f1),
    prAuc: r4(averagePrecision(y, pFail)),
    modes,
  };
}

/** C-MAPSS: RMSE and NASA score of the last window of each official test engine vs RUL_FD001 (capped at 125). */
export async function evaluateCmapss({ modelPath = join(MODELS_DIR, 'cmapss-rul', 'model.onnx'), session } = {}) {
  const meta = readLineguardMetadata(modelPath);
  const units = loadCmapssTest();
  const w = meta.window;
  const f = meta.inputs.length;
  const data = new Float32Array(units.length * w * f);
  units.forEach((u, i) => data.set(normalise(meta, cmapssWindow(meta, u.rows)), i * w * f));
  const sess = session ?? (await createSession(modelPath));
  const out = await sess.run({ input: new ort.Tensor('float32', data, [units.length, w, f]) });
  const pred = Array.from(out.rul_cycles.data);
  const truth = units.map((u) => u.trueRul);
  const capped = truth.map((t) => Math.min(t, RUL_CAP));
  const raiseBelow = meta.recommendedAlert.raiseBelow;
  const alarm = pred.map((p) => (p < raiseBelow ? 1 : 0));
  const within = truth.map((t) => (t <= raiseBelow ? 1 : 0));
  const counts = binaryCounts(within, alarm, 0.5);
  const prf = precisionRecallF1(counts);
  const leadTimes = await cmapssLeadTimes({ modelPath, session: sess });
  if (!session) await sess.release();
  return {
    model: meta.name,
    version: meta.version,
    protocol: 'official test set: last 30-cycle window of each test engine vs RUL_FD001 capped at 125',
    testEngines: units.length,
    shortestTestEngine: Math.min(...units.map((u) => u.rows.length)),
    rmse: Math.round(rmse(pred, capped) * 1000) / 1000,
    nasaScore: Math.round(nasaScore(pred, capped) * 100) / 100,
    mae: Math.round((pred.reduce((a, p, i) => a + Math.abs(p - capped[i]), 0) / pred.length) * 1000) / 1000,
    rmseUncapped: Math.round(rmse(pred, truth) * 1000) / 1000,
    nasaScoreUncapped: Math.round(nasaScore(pred, truth) * 100) / 100,
    alert: { condition: `rul_cycles < ${raiseBelow} vs true RUL <= ${raiseBelow}`, ...counts, precision: r4(prf.precision), recall: r4(prf.recall) },
    leadTimes,
  };
}

/**
 * Steel defects: accuracy, macro F1 and the per-class table on the test part (the rows listed in the training report,
 * a stratified seeded split never used for a choice), plus what each recommended per-class rule would raise on.
 */
export async function evaluateSteel({ modelPath = join(MODELS_DIR, 'steel-defect', 'model.onnx'), session } = {}) {
  const meta = readLineguardMetadata(modelPath);
  const report = JSON.parse(readFileSync(join(dirname(modelPath), 'training-report.json'), 'utf8'));
  const testRows = new Set(report.split.testIndices);
  const rows = loadSteel().filter((r) => testRows.has(r.row));
  if (rows.length !== testRows.size) throw new Error('steel test rows missing from the data');
  const cols = meta.inputs.map((inp) => steelColumn(rows[0].features, inp.name));
  const sess = session ?? (await createSession(modelPath));
  const f = meta.inputs.length;
  const input = new ort.Tensor('float32', normalise(meta, rows.map((r) => cols.map((c) => r.features[c]))), [rows.length, 1, f]);
  const out = await sess.run({ input });
  if (!session) await sess.release();
  const probs = out[meta.outputs[0].name].data;
  const k = meta.outputs[0].labels.length;
  const pred = rows.map((_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs[i * k + j] > probs[i * k + best]) best = j;
    return best;
  });
  const y = rows.map((r) => r.label);
  const perClass = {};
  const alerts = {};
  const rules = meta.recommendedAlerts ?? [];
  meta.outputs[0].labels.forEach((label, c) => {
    const counts = { tp: 0, fp: 0, fn: 0 };
    y.forEach((t, i) => {
      if (pred[i] === c && t === c) counts.tp++;
      else if (pred[i] === c) counts.fp++;
      else if (t === c) counts.fn++;
    });
    const prf = precisionRecallF1(counts);
    perClass[label] = { support: y.filter((t) => t === c).length, ...counts, precision: r4(prf.precision), recall: r4(prf.recall), f1: r4(prf.f1) };
    const rule = rules.find((r) => r.outputIndex === c);
    if (rule) {
      const a = binaryCounts(y.map((t) => (t === c ? 1 : 0)), y.map((_, i) => (probs[i * k + c] > rule.raiseAbove ? 1 : 0)), 0.5);
      const ap = precisionRecallF1(a);
      alerts[label] = { severity: rule.severity, raiseAbove: rule.raiseAbove, ...a, precision: r4(ap.precision), recall: r4(ap.recall) };
    }
  });
  const accuracy = pred.filter((p, i) => p === y[i]).length / y.length;
  const f1s = Object.values(perClass).map((v) => v.f1);
  return {
    model: meta.name,
    version: meta.version,
    split: 'test part: stratified by class, seeded; the rows listed in training-report.json split.testIndices',
    testRows: rows.length,
    accuracy: r4(accuracy),
    macroF1: r4(f1s.reduce((a, b) => a + b, 0) / f1s.length),
    perClass,
    alerts,
  };
}

/**
 * C-MAPSS lead times: every official test engine replayed cycle by cycle (edge-padded windows before cycle 30) under
 * the recommended rule (raise when rul_cycles < raiseBelow, clear when > clearAbove). The true RUL at cycle i of an
 * engine with n cycles is RUL_FD001 + (n - 1 - i). Engines that end with true RUL <= raiseBelow must have warned.
 */
export async function cmapssLeadTimes({ modelPath = join(MODELS_DIR, 'cmapss-rul', 'model.onnx'), session } = {}) {
  const meta = readLineguardMetadata(modelPath);
  const units = loadCmapssTest();
  const w = meta.window;
  const f = meta.inputs.length;
  const total = units.reduce((a, u) => a + u.rows.length, 0);
  const data = new Float32Array(total * w * f);
  let n = 0;
  for (const u of units) {
    for (let i = 0; i < u.rows.length; i++) data.set(normalise(meta, cmapssWindow(meta, u.rows.slice(0, i + 1))), (n++) * w * f);
  }
  const sess = session ?? (await createSession(modelPath));
  const out = await sess.run({ input: new ort.Tensor('float32', data, [total, w, f]) });
  if (!session) await sess.release();
  const pred = out.rul_cycles.data;
  const { raiseBelow, clearAbove } = meta.recommendedAlert;
  const leads = [];
  const missed = [];
  let flapping = 0;
  let early = 0;
  let due = 0;
  n = 0;
  for (const u of units) {
    let active = false;
    let raisedAtRul = null;
    let cleared = false;
    let warnedEarly = false;
    for (let i = 0; i < u.rows.length; i++) {
      const p = pred[n++];
      const trueRul = u.trueRul + (u.rows.length - 1 - i);
      if (!active && p < raiseBelow) {
        active = true;
        raisedAtRul = trueRul;
        if (trueRul > 2 * clearAbove) warnedEarly = true;
      } else if (active && p > clearAbove) {
        active = false;
        cleared = true;
      }
    }
    if (cleared) flapping++;
    if (warnedEarly) early++;
    if (u.trueRul <= raiseBelow) {
      due++;
      if (active) leads.push(raisedAtRul);
      else missed.push({ unit: u.unit, trueRul: u.trueRul });
    }
  }
  leads.sort((a, b) => a - b);
  const median = leads.length ? (leads[(leads.length - 1) >> 1] + leads[leads.length >> 1]) / 2 : null;
  return {
    rule: { raiseBelow, clearAbove },
    enginesDue: due,
    warned: leads.length,
    leadMin: leads.length ? leads[0] : null,
    leadMedian: median,
    leadMax: leads.length ? leads[leads.length - 1] : null,
    missed,
    flappingEngines: flapping,
    earlyWarnings: early,
  };
}

/** Median and 99th percentile latency (µs) of one batch-1 run, single intra-op thread, after a warm-up. */
export async function measureLatency(modelPath, runs = 2000) {
  const meta = readLineguardMetadata(modelPath);
  const sess = await createSession(modelPath);
  const input = new ort.Tensor('float32', new Float32Array(meta.window * meta.inputs.length), [1, meta.window, meta.inputs.length]);
  for (let i = 0; i < 200; i++) await sess.run({ input });
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    await sess.run({ input });
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  await sess.release();
  times.sort((a, b) => a - b);
  const q = (x) => Math.round(times[Math.min(times.length - 1, Math.floor(x * times.length))]);
  return { batch: 1, runs, medianUs: q(0.5), p99Us: q(0.99), threads: 1, onnxruntime: ort.env.versions?.common ?? 'unknown' };
}

// ----------------------------------------------------------------------------------------------------------------
// Model-card block

export const CARD_BEGIN = '<!-- metrics:begin (generated by `node models/evaluate.mjs --write`; do not edit) -->';
export const CARD_END = '<!-- metrics:end -->';

const pct = (x) => (x === null ? 'n/a' : x.toFixed(4));

/** The generated metrics section of a model card, from a metrics.json object. */
export function renderMetricsBlock(m) {
  const lines = [CARD_BEGIN];
  if (m.evaluation.model === 'ai4i-fault') {
    const e = m.evaluation;
    lines.push(
      `Held-out ${e.split}: ${e.testRows} processes, ${e.testFailures} machine failures.`,
      '',
      '| metric (machine failure) | value |',
      '|---|---:|',
      `| alert threshold (failure_probability ≥) | ${e.threshold} |`,
      `| precision | ${pct(e.precision)} |`,
      `| recall | ${pct(e.recall)} |`,
      `| F1 | ${pct(e.f1)} |`,
      `| PR-AUC (average precision) | ${pct(e.prAuc)} |`,
      `| TP / FP / FN | ${e.tp} / ${e.fp} / ${e.fn} |`,
      '',
      '| failure mode (threshold 0.5) | positives in test | precision | recall | F1 | PR-AUC |',
      '|---|---:|---:|---:|---:|---:|',
      ...Object.entries(e.modes).map(([k, v]) =>
        v.positives ? `| ${k} | ${v.positives} | ${pct(v.precision)} | ${pct(v.recall)} | ${pct(v.f1)} | ${pct(v.prAuc)} |` : `| ${k} | 0 | n/a | n/a | n/a | n/a |`),
    );
  } else if (m.evaluation.model === 'steel-defect') {
    const e = m.evaluation;
    lines.push(
      `Held-out ${e.split}: ${e.testRows} defects.`,
      '',
      `Accuracy ${pct(e.accuracy)}, macro F1 ${pct(e.macroF1)} (predicted class = the largest probability).`,
      '',
      '| class | test defects | precision | recall | F1 | rule severity | rule raises (p > threshold): TP / FP / FN | rule precision / recall |',
      '|---|---:|---:|---:|---:|---|---|---|',
      ...Object.entries(e.perClass).map(([k, v]) => {
        const a = e.alerts[k];
        const rule = a ? `${a.severity} | ${a.tp} / ${a.fp} / ${a.fn} (> ${a.raiseAbove}) | ${pct(a.precision)} / ${pct(a.recall)}` : 'none | | ';
        return `| ${k} | ${v.support} | ${pct(v.precision)} | ${pct(v.recall)} | ${pct(v.f1)} | ${rule} |`;
      }),
    );
  } else {
    const e = m.evaluation;
    const lt = e.leadTimes;
    lines.push(
      `Held-out ${e.protocol}: ${e.testEngines} engines (shortest ${e.shortestTestEngine} cycles, so none needed padding).`,
      '',
      '| metric | value |',
      '|---|---:|',
      `| RMSE (true RUL capped at 125) | ${e.rmse.toFixed(3)} |`,
      `| NASA score (capped) | ${e.nasaScore.toFixed(2)} |`,
      `| MAE (capped) | ${e.mae.toFixed(3)} |`,
      `| RMSE (uncapped true RUL) | ${e.rmseUncapped.toFixed(3)} |`,
      `| NASA score (uncapped) | ${e.nasaScoreUncapped.toFixed(2)} |`,
      `| alert ${e.alert.condition}: TP / FP / FN | ${e.alert.tp} / ${e.alert.fp} / ${e.alert.fn} |`,
      `| alert precision / recall | ${pct(e.alert.precision)} / ${pct(e.alert.recall)} |`,
      '',
      `Lead time under the recommended rule (raise rul_cycles < ${lt.rule.raiseBelow}, clear > ${lt.rule.clearAbove}), every test engine replayed ` +
        'cycle by cycle; the true RUL when the alert raised (and stayed raised to the end of the engine\'s data):',
      '',
      '| engines ending with true RUL ≤ raise threshold | warned | lead min / median / max (cycles) | without warning | engines whose alert cleared again (flapping) | raised at true RUL > 2 × clearAbove |',
      '|---:|---:|---|---|---:|---:|',
      `| ${lt.enginesDue} | ${lt.warned} | ${lt.leadMin} / ${lt.leadMedian} / ${lt.leadMax} | ${lt.missed.length ? lt.missed.map((x) => `engine ${x.unit} (true RUL ${x.trueRul})`).join(', ') : 'none'} | ${lt.flappingEngines} | ${lt.earlyWarnings} |`,
    );
  }
  const l = m.latency;
  lines.push(
    '',
    `Inference latency (onnxruntime-node ${l.onnxruntime}, CPU, 1 intra-op thread, batch 1, ${l.runs} runs after warm-up, ` +
      `measured on the 2-core development machine): median ${l.medianUs} µs, p99 ${l.p99Us} µs.`,
    '',
    `Model file sha256: \`${m.modelSha256}\``,
    CARD_END,
  );
  return lines.join('\n');
}

export function replaceMetricsBlock(readme, block) {
  const a = readme.indexOf(CARD_BEGIN);
  const b = readme.indexOf(CARD_END);
  if (a < 0 || b < a) throw new Error('README.md has no metrics block markers');
  return readme.slice(0, a) + block + readme.slice(b + CARD_END.length);
}

/** The metrics block currently in a README.md (between the markers, inclusive), or null. */
export function extractMetricsBlock(readme) {
  const a = readme.indexOf(CARD_BEGIN);
  const b = readme.indexOf(CARD_END);
  return a < 0 || b < a ? null : readme.slice(a, b + CARD_END.length);
}

export const SHIPPED = {
  'ai4i-fault': evaluateAi4i,
  'cmapss-rul': evaluateCmapss,
  'steel-defect': evaluateSteel,
};

async function main(argv) {
  const write = argv.includes('--write');
  for (const [name, evaluate] of Object.entries(SHIPPED)) {
    const modelPath = join(MODELS_DIR, name, 'model.onnx');
    const evaluation = await evaluate({ modelPath });
    const latency = await measureLatency(modelPath);
    const result = { evaluation, latency, modelSha256: sha256(readFileSync(modelPath)) };
    console.log(`== ${name}`);
    console.log(JSON.stringify(result, null, 1));
    if (write) {
      writeFileSync(join(MODELS_DIR, name, 'metrics.json'), `${JSON.stringify(result, null, 1)}\n`);
      const readmePath = join(MODELS_DIR, name, 'README.md');
      writeFileSync(readmePath, replaceMetricsBlock(readFileSync(readmePath, 'utf8'), renderMetricsBlock(result)));
      console.log(`wrote ${name}/metrics.json and the metrics block of ${name}/README.md`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
