import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import type { AlertOutbox } from '../core/alert.js';
import type { Component, ComponentContext, ComponentHealth } from '../core/component.js';
import type { TagWindow, WindowReader } from '../core/window.js';
import { buildAlertEvent } from './alert-builder.js';
import { AlertRule, type RuleTransition } from './alert-rule.js';
import { AlertStateStore } from './alert-state-store.js';
import type { ModelConfig } from './config.js';
import { assembleFeatures, recentInputs } from './feature-assembly.js';
import { FreshWindowReader } from './fresh-window-reader.js';
import type { OutputTensors, RunResult } from './inference-protocol.js';
import { InferenceScheduler } from './inference-scheduler.js';
import type { LoadedModel } from './loaded-model.js';
import { shortHash } from './model-file.js';
import { ModelFileWatcher } from './model-file-watcher.js';
import { ruleValue } from './model-io.js';
import { ModelSlot, round } from './model-slot.js';
import { RuntimeMetrics } from './runtime-metrics.js';

/** start() waits this long for the first load; a longer one (a first TensorRT engine build) goes on in the background. */
const START_WAIT_MS = 15_000;
const WATCH_DEBOUNCE_MS = 500;
const WATCH_POLL_MS = 5_000;
/** Samples per input tag kept in memory until the buffer has committed them (see FreshWindowReader). */
const FRESH_SAMPLES_KEPT = 4096;

/** One completed inference, as reported to `onInference`. */
export interface InferenceRecord {
  /** Timestamp of the newest sample the inference used, epoch ms. */
  ts: number;
  /** Wall-clock time it completed, epoch ms. */
  at: number;
  value: number;
  label?: string;
  outputs: OutputTensors;
  model: { version: string; sha256: string };
  provider: string;
  /** session.run in the worker, ms. */
  runMs: number;
  /** The gateway path: window read, features, worker round trip, rule and outbox, ms. */
  totalMs: number;
  transition?: 'raise' | 'clear';
}

export interface ModelRunnerDeps {
  /** Windows of recent samples (the buffer). */
  windows: WindowReader;
  /** Where alerts go (the buffer's durable outbox). */
  outbox: AlertOutbox;
  /** Directory of the config file: relative model paths are resolved from it. */
  baseDir: string;
  /** Observer of every completed inference (benchmarks, tests). Called synchronously; must not throw. */
  onInference?: (record: InferenceRecord) => void;
}

type SkipState = { reason: string; detail: string; since: number; count: number };

/**
 * Runs one ONNX model: loads it in a worker thread on the best execution provider that works here, feeds it
 * windows from the buffer on a schedule, turns its output into alerts through the rule, and swaps in a new
 * model file without stopping. A missing, corrupt or mismatched model makes this component `down` with the
 * reason; it never throws out of start() for it, and the rest of the gateway keeps running.
 */
export class ModelRunner implements Component {
  readonly name: string;
  readonly #path: string;
  readonly #rule: AlertRule;
  readonly #store: AlertStateStore;
  #metrics: RuntimeMetrics | undefined;
  #slot: ModelSlot | undefined;
  #scheduler: InferenceScheduler | undefined;
  #windows: FreshWindowReader | undefined;
  #unsubscribe: (() => void) | undefined;
  #removeAbortListener: (() => void) | undefined;
  #watcher: ModelFileWatcher | undefined;
  #started = false;
  #startedAt = 0;
  #stopped = false;
  #lastFingerprint: string | undefined;
  #lastInference: { at: number; ts: number; runMs: number; totalMs: number; value: number; label?: string } | undefined;
  #lastError: { message: string; at: number } | undefined;
  /** The outbox refused the last raise or clear: it is retried on every inference until it is stored. */
  #refused: { state: 'raised' | 'cleared'; alertId: string; message: string; since: number; attempts: number } | undefined;
  /** When the rule was last fed a finite output (health: a model whose every output is NaN is not working). */
  #lastEvaluatedAt: number | undefined;
  #skip: SkipState | undefined;
  readonly #skipped: Record<string, number> = {};
  #inferences = 0;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly ctx: ComponentContext,
    private readonly deps: ModelRunnerDeps,
  ) {
    this.name = `model/${cfg.name}`;
    this.#path = isAbsolute(cfg.file) ? cfg.file : resolve(deps.baseDir, cfg.file);
    this.#rule = new AlertRule(cfg.alert, randomUUID);
    this.#store = new AlertStateStore(ctx.stateDir, cfg.name);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#startedAt = Date.now();
    if (signal.aborted) {
      this.#stopped = true;
      return;
    }
    const onAbort = (): void => void this.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    this.#removeAbortListener = () => signal.removeEventListener('abort', onAbort);
    const metrics = new RuntimeMetrics(this.ctx.metrics, this.cfg.name);
    const slot = new ModelSlot({ cfg: this.cfg, path: this.#path, stateDir: this.ctx.stateDir, log: this.ctx.log, metrics });
    this.#metrics = metrics;
    this.#slot = slot;
    this.#restoreAlertState();
    const windows = new FreshWindowReader(this.deps.windows, this.cfg.inputs, Math.max(this.cfg.window.samples, FRESH_SAMPLES_KEPT));
    const scheduler = new InferenceScheduler({
      everyMs: this.cfg.schedule.everyMs,
      onNewData: this.cfg.schedule.onNewData,
      tags: this.cfg.inputs,
      // #inferOnce handles its own failures; this catch is the last line so a bug cannot become an unhandled rejection.
      run: () => this.#inferOnce().catch((err: unknown) => this.ctx.log.error({ err }, 'inference step failed')),
      onBusy: () => this.#count('busy'),
    });
    this.#windows = windows;
    this.#scheduler = scheduler;
    // One listener, in this order: the samples are in the window before the inference they trigger reads it.
    this.#unsubscribe = this.ctx.bus.subscribe((samples) => {
      windows.add(samples);
      scheduler.onSamples(samples);
    });
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([slot.reload(), new Promise((r) => (wait = setTimeout(r, START_WAIT_MS)))]);
    clearTimeout(wait);
    if (this.#stopped) return;
    if (this.cfg.watch) {
      this.#watcher = new ModelFileWatcher(this.#path, {
        debounceMs: WATCH_DEBOUNCE_MS,
        pollMs: WATCH_POLL_MS,
        onChange: () => void slot.reload(),
        onError: (err) => this.ctx.log.warn({ err, file: this.#path }, 'cannot watch the model file; changes are noticed by polling'),
      });
      await this.#watcher.start();
    }
    // stop() may have run during the await above; a scheduler started after it would run (and hold the process) for good.
    if (this.#stopped) return;
    scheduler.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#removeAbortListener?.();
    this.#unsubscribe?.();
    this.#watcher?.stop();
    await this.#scheduler?.stop(2000);
    await this.#slot?.stop();
    this.#metrics?.dispose();
  }

  health(): ComponentHealth {
    const details = this.#details();
    if (this.#stopped) return { state: 'stopped', details };
    const model = this.#slot?.model;
    const failure = this.#slot?.failure;
    if (!model) {
      if (failure) return { state: 'down', reason: failure.message, details };
      return { state: 'starting', reason: `loading ${this.#path}`, details };
    }
    if (failure) return { state: 'degraded', reason: `${failure.message}; still serving version ${model.file.version}`, details };
    const quietFor = Date.now() - (this.#lastInference?.at ?? this.#startedAt);
    // An inference whose output the rule cannot read does not count as working.
    const unevaluatedFor = Date.now() - (this.#lastEvaluatedAt ?? this.#startedAt);
    if (this.#skip && this.#skip.reason !== 'no_new_data' && this.#skip.reason !== 'busy' && unevaluatedFor > 3 * this.cfg.schedule.everyMs) {
      return { state: 'degraded', reason: `inferences are skipped: ${this.#skip.detail}`, details };
    }
    if (this.#lastError && quietFor > 3 * this.cfg.schedule.everyMs) {
      return { state: 'degraded', reason: `inferences fail: ${this.#lastError.message}`, details };
    }
    const refused = this.#refused;
    if (refused) {
      return {
        state: 'degraded',
        reason: `the outbox refuses to store the ${refused.state === 'raised' ? 'raise' : 'clear'} of alert ${refused.alertId} ` +
          `(${refused.message}); retried on every inference (see the buffer's health)`,
        details,
      };
    }
    return { state: 'up', details };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Inference

  async #inferOnce(): Promise<void> {
    const model = this.#slot?.model;
    if (!model) {
      this.#count('model_not_loaded', this.#slot?.failure?.message ?? 'the model is not loaded yet');
      return;
    }
    const t0 = performance.now();
    let window: TagWindow;
    try {
      window = this.#readWindow();
    } catch (err) {
      this.#count('window_unavailable', `the buffer cannot give a window: ${(err as Error).message}`);
      return;
    }
    const features = assembleFeatures(window, {
      tags: this.cfg.inputs, samples: this.cfg.window.samples, normalisation: model.io.normalisation,
      maxInvalidFraction: this.cfg.window.maxInvalidFraction,
    });
    if (!features.ok) {
      this.#count(features.reason, features.detail);
      return;
    }
    if (features.fingerprint === this.#lastFingerprint) {
      this.#count('no_new_data', 'no new sample since the last inference');
      return;
    }
    let result: RunResult;
    try {
      result = await withTimeout(model.infer(features.input), this.cfg.schedule.timeoutMs);
    } catch (err) {
      const timedOut = err instanceof TimeoutError;
      this.#metrics?.inference(timedOut ? 'timeout' : 'error');
      this.#lastError = { message: (err as Error).message, at: Date.now() };
      this.ctx.log.error({ err, version: model.file.version }, timedOut ? 'inference timed out' : 'inference failed');
      if (timedOut || !model.alive) this.#slot?.modelFailed(model, err as Error);
      return;
    }
    this.#lastFingerprint = features.fingerprint;
    this.#lastError = undefined;
    this.#inferences++;
    this.#metrics?.inference('ok');
    const picked = ruleValue(model.io.rule, result.outputs);
    this.#metrics?.output(model.io.rule.name, picked.value);
    let transition: RuleTransition | undefined;
    if (!Number.isFinite(picked.value)) {
      this.#count('output_not_finite', picked.problem ?? `output ${model.io.rule.name} is ${picked.value}`);
    } else {
      this.#lastEvaluatedAt = Date.now();
      transition = this.#applyRule(model, picked, features.newestTs, window);
      // A refused alert is retried on the next scheduled inference even when no new sample arrives (a source that
      // reports on change may send nothing for hours while the fault persists).
      if (this.#refused) this.#lastFingerprint = undefined;
      if (this.#skip) this.ctx.log.info({ after: this.#skip }, 'inferences resumed');
      this.#skip = undefined;
    }
    const totalMs = performance.now() - t0;
    this.#metrics?.latency('run', result.runMs);
    this.#metrics?.latency('total', totalMs);
    const at = Date.now();
    this.#lastInference = { at, ts: features.newestTs, runMs: result.runMs, totalMs, value: picked.value, ...(picked.label ? { label: picked.label } : {}) };
    try {
      this.deps.onInference?.({
        ts: features.newestTs, at, value: picked.value, ...(picked.label ? { label: picked.label } : {}), outputs: result.outputs,
        model: { version: model.file.version, sha256: model.file.sha256 }, provider: model.provider, runMs: result.runMs, totalMs,
        ...(transition ? { transition: transition.type } : {}),
      });
    } catch (err) {
      this.ctx.log.error({ err }, 'the onInference observer threw');
    }
  }

  #readWindow(): TagWindow {
    const w = this.cfg.window;
    const windows = this.#windows!;
    if (w.periodMs === undefined) return windows.lastN(this.cfg.inputs, w.samples);
    const to = Math.floor(Date.now() / w.periodMs) * w.periodMs;
    return windows.resampled(this.cfg.inputs, to - (w.samples - 1) * w.periodMs, to, w.periodMs, w.maxHoldMs);
  }

  /** Feeds the rule; a raise or clear goes to the outbox. If the outbox refuses it, the rule state is rolled back so the next inference tries again. */
  #applyRule(model: LoadedModel, picked: { value: number; label?: string }, ts: number, window: TagWindow): RuleTransition | undefined {
    const before = this.#rule.snapshot();
    const transition = this.#rule.evaluate(picked.value, ts);
    if (!transition) {
      // The condition behind a refused transition is gone: there is nothing left to store.
      if (this.#refused) this.ctx.log.warn({ alertId: this.#refused.alertId, state: this.#refused.state }, 'the alert the outbox refused no longer applies');
      this.#refused = undefined;
      return undefined;
    }
    const event = buildAlertEvent({
      gatewayId: this.ctx.gatewayId,
      cfg: this.cfg,
      model: { name: this.cfg.name, version: model.file.version, hash: `sha256:${model.file.sha256}`, provider: model.provider },
      transition,
      output: { name: model.io.rule.name, value: picked.value, label: picked.label },
      inputs: recentInputs(window, this.cfg.alert.recentSamples),
    });
    try {
      this.deps.outbox.enqueue(event);
    } catch (err) {
      this.#rule.restore(before);
      this.#metrics?.enqueueFailed();
      const message = (err as Error).message;
      if (this.#refused?.state === event.state) {
        // A retried raise carries a new alertId (the refused occurrence never existed for subscribers).
        Object.assign(this.#refused, { alertId: event.alertId, message, attempts: this.#refused.attempts + 1 });
      } else {
        // Logged once per refused alert; the retries are counted in lineguard_model_alert_enqueue_failures_total.
        this.ctx.log.error({ err, alertId: event.alertId, state: event.state }, 'the outbox refused the alert; it is retried on every inference');
        this.#refused = { state: event.state, alertId: event.alertId, message, since: Date.now(), attempts: 1 };
      }
      return undefined;
    }
    if (this.#refused) this.ctx.log.info({ alertId: event.alertId, attempts: this.#refused.attempts }, 'the outbox stored the alert it had refused');
    this.#refused = undefined;
    try {
      this.#store.save(this.#rule.snapshot());
    } catch (err) {
      this.ctx.log.warn({ err, file: this.#store.file }, 'cannot save the alert state (a restart would forget the active alert)');
    }
    if (transition.type === 'raise') this.#metrics?.raised();
    else this.#metrics?.cleared();
    this.ctx.log.info({ alertId: event.alertId, eventId: event.eventId, state: event.state, value: picked.value, version: model.file.version }, event.message);
    return transition;
  }

  #count(reason: string, detail = reason): void {
    this.#skipped[reason] = (this.#skipped[reason] ?? 0) + 1;
    this.#metrics?.skipped(reason);
    if (reason === 'busy') return;
    // "Nothing new since the last inference" must not hide that the output of that inference was unusable (NaN).
    if (reason === 'no_new_data' && this.#skip?.reason === 'output_not_finite') return;
    if (this.#skip?.reason === reason) {
      this.#skip.count++;
      this.#skip.detail = detail;
      return;
    }
    if (reason !== 'no_new_data' && reason !== 'model_not_loaded') this.ctx.log.warn({ reason, detail }, 'inference skipped');
    this.#skip = { reason, detail, since: Date.now(), count: 1 };
  }

  #restoreAlertState(): void {
    const saved = this.#store.load();
    if (!saved) return;
    this.#rule.restore(saved);
    this.#metrics?.alertActive(saved.active !== undefined);
    if (saved.active) this.ctx.log.info({ alertId: saved.active.alertId, raisedAt: saved.active.raisedAt }, 'alert still active from before the restart');
  }

  #details(): Record<string, unknown> {
    const model = this.#slot?.model;
    const failure = this.#slot?.failure;
    const active = this.#rule.active;
    return {
      file: this.#path,
      ...(model
        ? {
            provider: model.provider,
            providerNodes: model.providerNodes,
            fallbacks: model.fallbacks,
            version: model.file.version,
            sha256: shortHash(model.file.sha256),
            metadataVersion: model.file.metadata?.version ?? null,
            input: { name: model.io.inputName, shape: model.io.declaredInputShape, fed: model.io.inputDims, features: model.io.featureNames ?? null },
            normalisation: model.io.normalisationNote,
            ruleOutput: { name: model.io.rule.name, index: model.io.rule.index, kind: model.io.rule.kind ?? null },
            loadMs: round(model.loadMs),
            warmupMs: model.warmupMs.map(round),
          }
        : {}),
      ...(failure ? { loadError: { ...failure, at: new Date(failure.at).toISOString() } } : {}),
      inferences: this.#inferences,
      lastInference: this.#lastInference
        ? { ...this.#lastInference, at: new Date(this.#lastInference.at).toISOString(), runMs: round(this.#lastInference.runMs), totalMs: round(this.#lastInference.totalMs) }
        : null,
      ...(this.#lastError ? { lastError: this.#lastError.message } : {}),
      ...(this.#refused ? { refusedAlert: { ...this.#refused, since: new Date(this.#refused.since).toISOString() } } : {}),
      skipped: { ...this.#skipped },
      ...(this.#skip ? { skipping: { reason: this.#skip.reason, detail: this.#skip.detail, since: new Date(this.#skip.since).toISOString(), count: this.#skip.count } } : {}),
      alert: active ? { active: true, alertId: active.alertId, raisedAt: new Date(active.raisedAt).toISOString() } : { active: false },
    };
  }
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`no result after ${ms} ms (schedule.timeoutMs)`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolvePromise(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

