import ort from 'onnxruntime-node';
import type { SeriesReader } from '../core/window.js';
import { AlertRule, type ThresholdRule } from './alert-rule.js';
import { modelRules, type ModelConfig, type NamedRule } from './config.js';
import { assembleFeatures } from './feature-assembly.js';
import type { LoadResult } from './inference-protocol.js';
import { readModelFile, type ModelFile } from './model-file.js';
import { outputValues, resolveModelIo, ruleValue, type ModelIo } from './model-io.js';
import { modelAssemblyPlan } from './model-window-plan.js';
import { createSession, ortErrorMessage, runSession, valueInfos } from './session-factory.js';
import { assembleWindow } from './window-assembly.js';

/**
 * The backtest: a model and its rules replayed over the history in the buffer, with the same parts as live
 * inference — the window ends the FramePlanner would evaluate (a grid of `window.periodMs` of source time, else
 * every distinct sample time of the input tags), the one window assembly (assembleWindow over the buffer's series),
 * the same features and z-scoring (assembleFeatures with the model's metadata), the same rule outputs (ruleValue)
 * and the same rule state machine (AlertRule). The model runs in this process on the CPU (ONNX Runtime's CPU
 * kernels are deterministic for a given input: the outputs equal the live ones, which a test checks).
 *
 * What live inference does that a replay cannot: it starts at the newest window when the model first loads, skips
 * windows to catch up after a stall (`catch_up`), and restarts the timeline after a clock step. A backtest evaluates
 * every window of the range, so over a period where the live record has no gap both give the same rows.
 */
export interface BacktestOptions {
  cfg: ModelConfig;
  /** Absolute path of the ONNX file to run (the config's model, or a candidate). */
  file: string;
  /** The buffer's history. */
  reader: SeriesReader;
  /** First window end evaluated (source time, epoch ms, inclusive). */
  fromMs: number;
  /** Last window end evaluated (inclusive). */
  toMs: number;
  /** The rules to apply (default: the config's), e.g. with a threshold overridden. */
  rules?: NamedRule[];
  tagIntervalMs?: (tag: string) => number | undefined;
  /** Called about every `progressEveryMs` of wall time with the windows done and the source time reached. */
  onProgress?: (done: number, total: number | undefined, ts: number) => void;
  progressEveryMs?: number;
  /** Source time per read of event frame times (event models), ms. */
  chunkMs?: number;
}

/** One window of the backtest: what the live record (`inference_log`) holds for it. */
export interface BacktestRow {
  /** Source time of the window's end, epoch ms. */
  ts: number;
  outputs?: Record<string, number | number[]>;
  /** Per rule (in the order of `rules`), the value it read; NaN when not finite or not evaluated. */
  values: number[];
  skipped?: string;
  detail?: string;
}

/** One alert occurrence the rules would have raised (and maybe cleared). */
export interface BacktestAlert {
  rule: string;
  raisedAt: number;
  raiseValue: number;
  clearedAt?: number;
  clearValue?: number;
}

export interface BacktestResult {
  model: { name: string; file: string; version: string; sha256: string; normalisation: string };
  fromMs: number;
  toMs: number;
  rules: NamedRule[];
  rows: BacktestRow[];
  alerts: BacktestAlert[];
  /** Windows not evaluated, by reason. */
  skipped: Record<string, number>;
}

/** An in-process CPU session of a model file, checked against its config like a live load. */
export class BacktestModel {
  private constructor(
    readonly file: ModelFile,
    readonly io: ModelIo,
    private readonly session: ort.InferenceSession,
  ) {}

  static async load(cfg: ModelConfig, path: string): Promise<BacktestModel> {
    const file = await readModelFile(path);
    // The CPU only: a backtest must not compete with the live model for a GPU, and its outputs are compared with
    // the record to 1e-6.
    const created = await createSession(file.bytes, { providers: ['cpu'], deviceId: 0, intraOpThreads: cfg.intraOpThreads, profileDir: '' }, false);
    const load: LoadResult = {
      provider: created.provider, failed: created.failed, createMs: created.createMs,
      inputs: valueInfos(created.session.inputMetadata), outputs: valueInfos(created.session.outputMetadata),
    };
    try {
      return new BacktestModel(file, resolveModelIo(cfg, file, load), created.session);
    } catch (err) {
      await created.session.release();
      throw err;
    }
  }

  run(input: Float32Array): ReturnType<typeof runSession> {
    return runSession(this.session, input, this.io.inputDims);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** The window ends live inference evaluates in [fromMs, toMs], oldest first, in chunks (a long range is not held at once). */
export function* windowEnds(
  reader: SeriesReader, cfg: Pick<ModelConfig, 'inputs' | 'window'>, fromMs: number, toMs: number, chunkMs = 3_600_000,
): Generator<number> {
  const P = cfg.window.periodMs;
  if (P !== undefined) {
    // The planner's grid: multiples of periodMs of source time.
    for (let t = Math.ceil(fromMs / P) * P; t <= toMs; t += P) yield t;
    return;
  }
  // The planner's event frames: every distinct sample time of the input tags (good or bad quality alike).
  for (let start = fromMs - 1; start < toMs; start += chunkMs) {
    const end = Math.min(toMs, start + chunkMs);
    const times = new Set<number>();
    for (const tag of cfg.inputs) for (const p of reader.series(tag, start, end)) if (p.ts > start) times.add(p.ts);
    yield* [...times].sort((a, b) => a - b);
  }
}

/** Runs the backtest. The model file is loaded for the run and released after it. */
export async function runBacktest(o: BacktestOptions): Promise<BacktestResult> {
  const cfg = o.cfg;
  const rules = o.rules ?? modelRules(cfg);
  const model = await BacktestModel.load(cfg, o.file);
  try {
    const plan = modelAssemblyPlan(cfg, o.tagIntervalMs);
    const rows: BacktestRow[] = [];
    const skipped: Record<string, number> = {};
    const skip = (row: BacktestRow, reason: string, detail?: string): void => {
      row.skipped = reason;
      if (detail !== undefined) row.detail = detail;
      skipped[reason] = (skipped[reason] ?? 0) + 1;
    };
    const total = cfg.window.periodMs !== undefined ? Math.max(0, Math.floor(o.toMs / cfg.window.periodMs) - Math.ceil(o.fromMs / cfg.window.periodMs) + 1) : undefined;
    const every = o.progressEveryMs ?? 2000;
    let lastProgress = performance.now();
    for (const end of windowEnds(o.reader, cfg, o.fromMs, o.toMs, o.chunkMs)) {
      const row: BacktestRow = { ts: end, values: rules.map(() => Number.NaN) };
      rows.push(row);
      if (o.onProgress && performance.now() - lastProgress >= every) {
        lastProgress = performance.now();
        o.onProgress(rows.length, total, end);
      }
      const window = assembleWindow(o.reader, plan, end);
      const features = assembleFeatures(window, {
        tags: cfg.inputs, samples: cfg.window.samples, normalisation: model.io.normalisation, maxInvalidFraction: cfg.window.maxInvalidFraction,
      });
      if (!features.ok) {
        skip(row, features.reason, features.detail);
        continue;
      }
      let outputs;
      try {
        outputs = await model.run(features.input);
      } catch (err) {
        skip(row, 'inference_failed', ortErrorMessage(err));
        continue;
      }
      row.outputs = outputValues(outputs);
      let evaluated = 0;
      rules.forEach((_rule, i) => {
        const out = model.io.rules[i];
        const value = out ? ruleValue(out, outputs).value : Number.NaN;
        if (!Number.isFinite(value)) return;
        evaluated++;
        row.values[i] = value;
      });
      if (evaluated === 0) skip(row, 'output_not_finite');
    }
    // The rules see exactly the values and times live inference gives them, in order; AlertRule is pure, so
    // replaying each rule over its series afterwards is the same as evaluating it window by window.
    const alerts = rules
      .flatMap((rule, i) => replayRule(rule, rows.map((row) => ({ ts: row.ts, value: row.values[i]! }))))
      .sort((x, y) => x.raisedAt - y.raisedAt);
    return {
      model: { name: cfg.name, file: o.file, version: model.file.version, sha256: model.file.sha256, normalisation: model.io.normalisationNote },
      fromMs: o.fromMs, toMs: o.toMs, rules, rows, alerts, skipped,
    };
  } finally {
    await model.release();
  }
}

/**
 * A rule with its threshold moved to `raise` and the clear threshold moved with it (the configured hysteresis gap,
 * raise − clear, is kept): what the threshold sweep evaluates.
 */
export function withRaiseThreshold<R extends ThresholdRule>(rule: R, raise: number): R {
  if (rule.raiseAbove !== undefined) {
    const gap = rule.raiseAbove - (rule.clearBelow ?? rule.raiseAbove);
    return { ...rule, raiseAbove: raise, clearBelow: raise - gap };
  }
  const gap = (rule.clearAbove ?? rule.raiseBelow!) - rule.raiseBelow!;
  return { ...rule, raiseBelow: raise, clearAbove: raise + gap };
}

/** Replays one rule over a series of (ts, value): the occurrences it raises (and clears). Non-finite values are ignored. */
export function replayRule(rule: NamedRule, series: ReadonlyArray<{ ts: number; value: number }>): BacktestAlert[] {
  const machine = new AlertRule(rule, () => 'sweep');
  const alerts: BacktestAlert[] = [];
  let open: BacktestAlert | undefined;
  for (const { ts, value } of series) {
    const t = machine.evaluate(value, ts);
    if (t?.type === 'raise') {
      open = { rule: rule.name, raisedAt: t.ts, raiseValue: t.value };
      alerts.push(open);
    } else if (t?.type === 'clear' && open) {
      open.clearedAt = t.clearedAt;
      open.clearValue = t.value;
      open = undefined;
    }
  }
  return alerts;
}
