import { isAbsolute, resolve } from 'node:path';
import type { AlertOutbox } from '../core/alert.js';
import type { Component, ComponentContext, ComponentHealth } from '../core/component.js';
import type { InferenceRecorder } from '../core/inference-record.js';
import { monotonicMs, wallClockMs } from '../core/source-clock.js';
import type { SeriesReader, TagWindow } from '../core/window.js';
import { buildAlertEvent, buildAvailabilityEvent } from './alert-builder.js';
import type { RuleTransition } from './alert-rule.js';
import { AvailabilityAlert } from './availability.js';
import { modelRules, type ModelConfig } from './config.js';
import { assembleFeatures, recentInputs } from './feature-assembly.js';
import { FramePlanner } from './frame-planner.js';
import type { OutputTensors, RunResult } from './inference-protocol.js';
import { InferenceScheduler } from './inference-scheduler.js';
import { LiveSeries } from './live-series.js';
import type { LoadedModel } from './loaded-model.js';
import { shortHash } from './model-file.js';
import { ModelFileWatcher } from './model-file-watcher.js';
import { outputValues, ruleValue } from './model-io.js';
import { ModelSlot, round } from './model-slot.js';
import { modelAssemblyPlan } from './model-window-plan.js';
import { RecentSamples } from './recent-samples.js';
import { RuleSet, type RuleEntry } from './rule-set.js';
import { RuntimeMetrics } from './runtime-metrics.js';
import { ShadowModel } from './shadow-model.js';
import { assembleWindow, type AssemblyPlan } from './window-assembly.js';

/** start() waits this long for the first load; a longer one (a first TensorRT engine build) goes on in the background. */
const START_WAIT_MS = 15_000;
const WATCH_DEBOUNCE_MS = 500;
const WATCH_POLL_MS = 5_000;
/** Windows evaluated per scheduler step at most; a longer backlog is skipped to the newest (counted). */
const MAX_WINDOWS_PER_STEP = 256;

/** Why a window is not evaluated that only means "the first windows are not full yet". */
const WARM_UP_REASONS = new Set(['no_data', 'tag_without_data', 'too_many_invalid', 'model_not_loaded', 'busy']);

/** One evaluated window, as reported to `onInference`. */
export interface InferenceRecord {
  /** Source time of the window's end (its newest frame), epoch ms. */
  ts: number;
  /** Wall-clock time it completed, epoch ms. */
  at: number;
  /** The first rule's value. */
  value: number;
  label?: string;
  outputs: OutputTensors;
  model: { version: string; sha256: string };
  provider: string;
  /** session.run in the worker, ms. */
  runMs: number;
  /** The gateway path: window assembly, features, worker round trip, rules and outbox, ms. */
  totalMs: number;
  /** The first transition of this window, if any (see `transitions` for every rule's). */
  transition?: 'raise' | 'clear';
  transitions: Array<{ rule: string; type: 'raise' | 'clear' }>;
}

export interface ModelRunnerDeps {
  /** History of committed samples (the buffer), for windows older than what memory holds. */
  windows: SeriesReader;
  /** Where alerts go (the buffer's durable outbox); the rule state commits with each event. */
  outbox: AlertOutbox;
  /** Directory of the config file: relative model paths are resolved from it. */
  baseDir: string;
  /** The record of every inference (the buffer's inference log). */
  recorder?: InferenceRecorder;
  /** A tag's sampling interval from its source's config (the default hold follows from it). */
  tagIntervalMs?: (tag: string) => number | undefined;
  /** Observer of every evaluated window (benchmarks, tests). Called synchronously; must not throw. */
  onInference?: (record: InferenceRecord) => void;
}

type SkipState = { reason: string; detail: string; since: number; count: number };

/**
 * Runs one ONNX model: loads it in a worker thread on the best execution provider that works here, evaluates each
 * window of source time exactly once and in order (FramePlanner), assembled by the one window assembly from memory
 * and the buffer, records every inference, turns the outputs into alerts through its rules (state committed with
 * each event), raises model_unavailable when it cannot work for too long, and swaps in a new model file without
 * stopping. A missing, corrupt or mismatched model makes this component `down` with the reason; it never throws
 * out of start() for it, and the rest of the gateway keeps running.
 */
export class ModelRunner implements Component {
  readonly name: string;
  readonly #path: string;
  readonly #plan: AssemblyPlan;
  readonly #memory: RecentSamples;
  readonly #series: LiveSeries;
  readonly #planner: FramePlanner;
  #rules: RuleSet | undefined;
  #availability: AvailabilityAlert | undefined;
  #metrics: RuntimeMetrics | undefined;
  #slot: ModelSlot | undefined;
  #scheduler: InferenceScheduler | undefined;
  #unsubscribe: (() => void) | undefined;
  #unsubscribeSteps: (() => void) | undefined;
  #removeAbortListener: (() => void) | undefined;
  #watcher: ModelFileWatcher | undefined;
  #started = false;
  #startedMono = 0;
  #stopped = false;
  #lastInference: { at: number; ts: number; runMs: number; totalMs: number; value: number; label?: string } | undefined;
  #lastError: { message: string; at: number } | undefined;
  /** Monotonic time of the last window a rule evaluated (a finite output). */
  #lastEvaluatedMono: number | undefined;
  #skip: SkipState | undefined;
  readonly #skipped: Record<string, number> = {};
  #inferences = 0;
  #clockSteps = 0;
  /** The last window was evaluated by at least one rule (false after a skipped one or a failed inference). */
  #lastOutcomeOk = false;
  /** Each rule's last evaluated value, window and end: what a refused transition is retried with. */
  readonly #lastPicked = new Map<RuleEntry, { picked: { value: number; label?: string }; end: number; window: TagWindow }>();
  /** For an event window: how far its first frame lay behind its end (what memory must keep). */
  #oldestFrameLag: number | undefined;
  /** The candidate run on the same windows (models[].shadow); it never publishes. */
  readonly #shadow: ShadowModel | undefined;

  constructor(
    private readonly cfg: ModelConfig,
    private readonly ctx: ComponentContext,
    private readonly deps: ModelRunnerDeps,
  ) {
    this.name = `model/${cfg.name}`;
    this.#path = isAbsolute(cfg.file) ? cfg.file : resolve(deps.baseDir, cfg.file);
    this.#plan = modelAssemblyPlan(cfg, deps.tagIntervalMs);
    this.#memory = new RecentSamples(cfg.inputs);
    this.#series = new LiveSeries(this.#memory, deps.windows);
    this.#shadow = cfg.shadow ? new ShadowModel(cfg, cfg.shadow.file, ctx, { baseDir: deps.baseDir, recorder: deps.recorder }) : undefined;
    const span = cfg.window.periodMs !== undefined ? (cfg.window.samples - 1) * cfg.window.periodMs : 0;
    this.#planner = new FramePlanner(
      { tags: cfg.inputs, periodMs: cfg.window.periodMs, latenessMs: cfg.window.latenessMs, maxPerStep: MAX_WINDOWS_PER_STEP, backJumpMs: Math.max(300_000, 10 * span) },
      this.#memory, ctx.clocks,
    );
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#startedMono = monotonicMs();
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
    const rules = new RuleSet(this.cfg.name, modelRules(this.cfg), this.deps.outbox, this.ctx.log, wallClockMs);
    rules.restore(this.ctx.stateDir);
    this.#planner.restore(rules.lastWindowTs);
    this.#rules = rules;
    metrics.alertActive(rules.entries.some((e) => e.rule.active !== undefined));
    this.#availability = new AvailabilityAlert({
      key: `${this.cfg.name}/model_unavailable`, afterMs: this.cfg.unavailable.afterMs, enabled: this.cfg.unavailable.enabled,
      outbox: this.deps.outbox, log: this.ctx.log,
      build: (e) => buildAvailabilityEvent({
        gatewayId: this.ctx.gatewayId, kind: 'model_unavailable', severity: this.cfg.unavailable.severity, ...e,
        model: this.#modelInfo(), ...(this.cfg.asset !== undefined ? { asset: this.cfg.asset } : {}),
        reason: e.state === 'raised' ? `cannot infer: ${e.reason}` : 'infers again',
        unevaluatedAlerts: this.#rules?.entries.flatMap((x) => (x.rule.active ? [x.rule.active.alertId] : [])) ?? [],
      }),
    });
    const scheduler = new InferenceScheduler({
      everyMs: this.cfg.schedule.everyMs,
      onNewData: this.cfg.schedule.onNewData,
      tags: this.cfg.inputs,
      // #step handles its own failures; this catch is the last line so a bug cannot become an unhandled rejection.
      run: () => this.#step().catch((err: unknown) => this.ctx.log.error({ err }, 'inference step failed')),
      onBusy: () => this.#count('busy'),
    });
    this.#scheduler = scheduler;
    // One listener, in this order: the samples are in memory before the inference they trigger reads it.
    this.#unsubscribe = this.ctx.bus.subscribe((samples) => {
      this.#memory.add(samples);
      scheduler.onSamples(samples);
    });
    this.#unsubscribeSteps = this.ctx.clocks?.onStep((step) => {
      if (!this.#memory.sources().has(step.source)) return;
      this.#clockSteps++;
      this.#memory.restartTimeline(step.source, step.newTs);
      this.#planner.reset();
      this.#rules?.resetTimers();
      this.#count('clock_step', `the clock of ${step.source} jumped by ${Math.round(step.deltaMs / 1000)} s; the window restarts on the new timeline`);
    });
    let wait: NodeJS.Timeout | undefined;
    this.#shadow?.start();
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
    this.#unsubscribeSteps?.();
    this.#watcher?.stop();
    await this.#scheduler?.stop(2000);
    try {
      this.#rules?.saveLazily(true);
    } catch {
      // The buffer may be gone already; the state of the last event is committed anyway.
    }
    await this.#slot?.stop();
    await this.#shadow?.stop();
    this.#metrics?.dispose();
  }

  health(): ComponentHealth {
    const details = this.#details();
    if (this.#stopped) return { state: 'stopped', details };
    const model = this.#slot?.model;
    const failure = this.#slot?.failure;
    const unavailable = this.#availability?.active;
    if (unavailable) return { state: 'down', reason: `model_unavailable: cannot infer (${unavailable.reason}) since ${new Date(unavailable.raisedAt).toISOString()}`, details };
    if (!model) {
      if (failure) return { state: 'down', reason: failure.message, details };
      return { state: 'starting', reason: `loading ${this.#path}`, details };
    }
    if (failure) return { state: 'degraded', reason: `${failure.message}; still serving version ${model.file.version}`, details };
    if (this.#lastEvaluatedMono === undefined) {
      // Warming up: the first windows are not full yet. A model that runs and returns nothing usable is not warming up.
      if (this.#skip && !WARM_UP_REASONS.has(this.#skip.reason)) return { state: 'degraded', reason: `windows are not evaluated: ${this.#skip.detail}`, details };
      if (this.#lastError) return { state: 'degraded', reason: `inferences fail: ${this.#lastError.message}`, details };
      return { state: 'starting', reason: this.#skip ? `waiting for the first full window: ${this.#skip.detail}` : 'waiting for the first full window', details };
    }
    const unevaluatedFor = monotonicMs() - this.#lastEvaluatedMono;
    const quiet = 3 * Math.max(this.cfg.schedule.everyMs, this.cfg.window.periodMs ?? 0);
    if (this.#skip && this.#skip.reason !== 'busy' && unevaluatedFor > quiet) {
      return { state: 'degraded', reason: `windows are not evaluated: ${this.#skip.detail}`, details };
    }
    if (this.#lastError && unevaluatedFor > quiet) return { state: 'degraded', reason: `inferences fail: ${this.#lastError.message}`, details };
    const refused = this.#rules?.entries.find((e) => e.refused);
    if (refused?.refused) {
      return {
        state: 'degraded',
        reason: `the outbox refuses to store the ${refused.refused.state === 'raised' ? 'raise' : 'clear'} of alert ${refused.refused.alertId} ` +
          `(rule ${refused.cfg.name}: ${refused.refused.message}); retried at the next window (see the buffer's health)`,
        details,
      };
    }
    return { state: 'up', details };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Inference

  /** One scheduler step: every window that became ready since the last step, in order. */
  async #step(): Promise<void> {
    const model = this.#slot?.model;
    if (!model) {
      this.#count('model_not_loaded', this.#slot?.failure?.message ?? 'the model is not loaded yet');
      this.#checkAvailability();
      return;
    }
    const planned = this.#planner.next();
    if (planned.timelineRestarted) {
      this.#rules?.resetTimers();
      this.#count('clock_step', 'the sources\' time is far behind the last evaluated window (a clock step back while the gateway was away); the window restarts on the new timeline');
    }
    if (planned.skipped > 0) this.#count('catch_up', `${planned.skipped} windows skipped to catch up with the sources`, planned.skipped);
    if (planned.ends.length === 0 && this.#planner.readyUntil() === undefined) {
      this.#count('no_data', `no sample of the input tags yet (${this.cfg.inputs.join(', ')})`);
    }
    for (const end of planned.ends) {
      if (this.#stopped || this.#slot?.model !== model) break;
      await this.#evaluate(model, end);
    }
    // A transition the outbox refused is retried on the schedule even when no new window comes (a source that
    // reports on change may send nothing for hours while the fault persists).
    if (planned.ends.length === 0) this.#retryRefused(model);
    this.#checkAvailability();
    const lastEnd = this.#planner.lastEnd;
    if (Number.isFinite(lastEnd)) {
      const span = this.cfg.window.periodMs !== undefined ? (this.cfg.window.samples - 1) * this.cfg.window.periodMs : 0;
      this.#memory.prune(lastEnd - span - this.cfg.window.latenessMs - (this.#oldestFrameLag ?? 0));
    }
    this.#rules?.saveLazily();
  }

  async #evaluate(model: LoadedModel, end: number): Promise<void> {
    const t0 = performance.now();
    const at = wallClockMs();
    this.#planner.markEvaluated(end);
    let window: TagWindow;
    try {
      window = assembleWindow(this.#series, this.#plan, end);
    } catch (err) {
      this.#skipWindow(end, at, model, 'window_unavailable', `the buffer cannot give a window: ${(err as Error).message}`);
      return;
    }
    if (this.cfg.window.periodMs === undefined && window.rows > 0) this.#oldestFrameLag = end - window.ts[0]!;
    const features = assembleFeatures(window, {
      tags: this.cfg.inputs, samples: this.cfg.window.samples, normalisation: model.io.normalisation,
      maxInvalidFraction: this.cfg.window.maxInvalidFraction,
    });
    if (!features.ok) {
      const silent = features.reason === 'tag_without_data' || features.reason === 'no_data'
        ? this.cfg.inputs.filter((tag) => this.#memory.newest(tag) === undefined && this.deps.windows.recent(tag, 1, end).length === 0)
        : [];
      const detail = silent.length > 0 ? `${features.detail}; no sample yet of ${silent.join(', ')}` : features.detail;
      this.#skipWindow(end, at, model, features.reason, detail);
      return;
    }
    let result: RunResult;
    try {
      result = await withTimeout(model.infer(features.input), this.cfg.schedule.timeoutMs);
    } catch (err) {
      const timedOut = err instanceof TimeoutError;
      this.#metrics?.inference(timedOut ? 'timeout' : 'error');
      this.#lastError = { message: (err as Error).message, at: wallClockMs() };
      this.#lastOutcomeOk = false;
      this.ctx.log.error({ err, version: model.file.version }, timedOut ? 'inference timed out' : 'inference failed');
      this.#record({ model: this.cfg.name, ts: end, at, version: model.file.version, skipped: timedOut ? 'inference_timeout' : 'inference_failed', detail: (err as Error).message });
      if (timedOut || !model.alive) this.#slot?.modelFailed(model, err as Error);
      return;
    }
    this.#lastError = undefined;
    this.#inferences++;
    this.#metrics?.inference('ok');
    const values = outputValues(result.outputs);
    this.#record({ model: this.cfg.name, ts: end, at, version: model.file.version, outputs: values });
    for (const [name, value] of Object.entries(values)) if (typeof value === 'number') this.#metrics?.output(name, value);
    const transitions: InferenceRecord['transitions'] = [];
    let evaluated = 0;
    let first: { value: number; label?: string } | undefined;
    const rules = this.#rules!;
    const ruleValues = rules.entries.map(() => Number.NaN);
    rules.entries.forEach((entry, i) => {
      const out = model.io.rules[i];
      if (!out) return;
      const picked = ruleValue(out, result.outputs);
      first ??= picked;
      if (!Number.isFinite(picked.value)) {
        this.#metrics?.nonFinite(out.name);
        this.#count('output_not_finite', picked.problem ?? `output ${out.name} is ${picked.value}; rule ${entry.cfg.name} is not evaluated`);
        return;
      }
      evaluated++;
      ruleValues[i] = picked.value;
      this.#lastPicked.set(entry, { picked, end, window });
      const done = rules.evaluate(entry, picked.value, end, (e, transition) => this.#buildEvent(model, e, transition, picked, window));
      if (!done) {
        if (entry.refused) this.#metrics?.enqueueFailed();
        return;
      }
      transitions.push({ rule: entry.cfg.name, type: done.transition.type });
      if (done.transition.type === 'raise') this.#metrics?.raised();
      else this.#metrics?.cleared();
      this.ctx.log.info({ alertId: done.event.alertId, eventId: done.event.eventId, rule: entry.cfg.name, state: done.event.state, value: picked.value, version: model.file.version }, done.event.message);
    });
    this.#metrics?.alertActive(rules.entries.some((e) => e.rule.active !== undefined));
    this.#shadow?.observe(end, window, { values: ruleValues, transitions });
    this.#lastOutcomeOk = evaluated > 0;
    if (evaluated > 0) {
      this.#lastEvaluatedMono = monotonicMs();
      this.#availability?.ok();
      if (this.#skip && this.#skip.reason !== 'busy') this.ctx.log.info({ after: this.#skip }, 'windows are evaluated again');
      this.#skip = undefined;
    } else {
      this.#record({ model: this.cfg.name, ts: end, at, version: model.file.version, skipped: 'output_not_finite' });
    }
    const totalMs = performance.now() - t0;
    this.#metrics?.latency('run', result.runMs);
    this.#metrics?.latency('total', totalMs);
    const value = first?.value ?? Number.NaN;
    const label = first?.label;
    this.#lastInference = { at: wallClockMs(), ts: end, runMs: result.runMs, totalMs, value, ...(label ? { label } : {}) };
    try {
      this.deps.onInference?.({
        ts: end, at: wallClockMs(), value, ...(label ? { label } : {}), outputs: result.outputs,
        model: { version: model.file.version, sha256: model.file.sha256 }, provider: model.provider, runMs: result.runMs, totalMs,
        ...(transitions[0] ? { transition: transitions[0].type } : {}), transitions,
      });
    } catch (err) {
      this.ctx.log.error({ err }, 'the onInference observer threw');
    }
  }

  #retryRefused(model: LoadedModel): void {
    const rules = this.#rules;
    if (!rules) return;
    for (const entry of rules.entries) {
      const last = this.#lastPicked.get(entry);
      if (!entry.refused || !last) continue;
      const done = rules.evaluate(entry, last.picked.value, last.end, (e, t) => this.#buildEvent(model, e, t, last.picked, last.window));
      if (!done) {
        if (entry.refused) this.#metrics?.enqueueFailed();
        continue;
      }
      if (done.transition.type === 'raise') this.#metrics?.raised();
      else this.#metrics?.cleared();
      this.ctx.log.info({ alertId: done.event.alertId, eventId: done.event.eventId, rule: entry.cfg.name, state: done.event.state }, done.event.message);
    }
    this.#metrics?.alertActive(rules.entries.some((e) => e.rule.active !== undefined));
  }

  #buildEvent(model: LoadedModel, entry: RuleEntry, transition: RuleTransition, picked: { value: number; label?: string }, window: TagWindow) {
    return buildAlertEvent({
      gatewayId: this.ctx.gatewayId,
      cfg: this.cfg,
      rule: entry.cfg,
      model: { name: this.cfg.name, version: model.file.version, hash: `sha256:${model.file.sha256}`, provider: model.provider },
      transition,
      output: { name: model.io.rules[this.#rules!.entries.indexOf(entry)]?.name ?? entry.cfg.name, value: picked.value, label: picked.label },
      inputs: recentInputs(window, entry.cfg.recentSamples),
    });
  }

  #skipWindow(end: number, at: number, model: LoadedModel, reason: string, detail: string): void {
    this.#lastOutcomeOk = false;
    this.#count(reason, detail);
    this.#record({ model: this.cfg.name, ts: end, at, version: model.file.version, skipped: reason, detail });
  }

  /** Raises model_unavailable once the model has not evaluated a window for `unavailable.afterMs`. */
  #checkAvailability(): void {
    const availability = this.#availability;
    if (!availability) return;
    // One frame per sample time: a device that sends rarely gives no new window between its messages, and that is
    // not a failure while its last window was evaluated and its values are still within their hold. Past the hold
    // the inputs are stale, and that is.
    const hold = Math.min(...this.#plan.maxHoldMs);
    if (this.cfg.window.periodMs === undefined && this.#slot?.model && Number.isFinite(this.#planner.lastEnd)) {
      const ready = this.#planner.readyUntil();
      if (ready === undefined) {
        // Nothing has come since this start, and the previous run evaluated windows up to lastEnd: a device that
        // sends rarely may simply not have sent yet. Its values stand for their hold, as they would have without
        // the restart.
        if (this.#lastEvaluatedMono === undefined && monotonicMs() - this.#startedMono <= hold) return;
      } else if (this.#lastOutcomeOk) {
        const sourceTime = ready + this.cfg.window.latenessMs;
        if (sourceTime - this.#planner.lastEnd <= hold) {
          this.#lastEvaluatedMono = monotonicMs();
          return;
        }
        this.#count('stale_inputs', `no new sample of the input tags for ${Math.round((sourceTime - this.#planner.lastEnd) / 1000)} s of source time (longer than window.maxHoldMs ${hold} ms)`);
      }
    }
    // Before the first window of this run, the window itself must fill: samples × periodMs of (source) time, plus
    // the allowed lateness. A model is not unavailable for warming up.
    const span = this.cfg.window.periodMs !== undefined ? (this.cfg.window.samples - 1) * this.cfg.window.periodMs : 0;
    const since = this.#lastEvaluatedMono ?? this.#startedMono + span + this.cfg.window.latenessMs;
    if (monotonicMs() - since < this.cfg.unavailable.afterMs) return;
    const reason = this.#slot?.model
      ? (this.#skip?.detail ?? this.#lastError?.message ?? 'no new window: the input tags\' sources have not advanced (stale or missing inputs)')
      : (this.#slot?.failure?.message ?? 'the model is not loaded');
    availability.failing(reason);
  }

  #record(row: Parameters<InferenceRecorder['record']>[0]): void {
    try {
      this.deps.recorder?.record(row);
    } catch (err) {
      this.ctx.log.debug({ err }, 'inference not recorded');
    }
  }

  #count(reason: string, detail = reason, n = 1): void {
    this.#skipped[reason] = (this.#skipped[reason] ?? 0) + n;
    this.#metrics?.skipped(reason);
    if (reason === 'busy' || reason === 'catch_up') return;
    // "No data" must not hide that the outputs of the last window were unusable (NaN).
    if (reason === 'no_data' && this.#skip?.reason === 'output_not_finite') return;
    if (this.#skip?.reason === reason) {
      this.#skip.count += n;
      this.#skip.detail = detail;
      return;
    }
    if (reason !== 'no_data' && reason !== 'model_not_loaded') this.ctx.log.warn({ reason, detail }, 'window not evaluated');
    this.#skip = { reason, detail, since: wallClockMs(), count: n };
  }

  #modelInfo(): { name: string; version: string; hash: string; provider: string } {
    const model = this.#slot?.model;
    if (model) return { name: this.cfg.name, version: model.file.version, hash: `sha256:${model.file.sha256}`, provider: model.provider };
    const sha = this.#slot?.failure?.sha256;
    return { name: this.cfg.name, version: 'not loaded', hash: sha ? `sha256:${sha}` : `sha256:${'0'.repeat(64)}`, provider: 'none' };
  }

  #details(): Record<string, unknown> {
    const model = this.#slot?.model;
    const failure = this.#slot?.failure;
    const unavailable = this.#availability?.active;
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
            ruleOutputs: model.io.rules.map((r) => ({ rule: r.rule, output: r.name, index: r.index, kind: r.kind ?? null })),
            loadMs: round(model.loadMs),
            warmupMs: model.warmupMs.map(round),
          }
        : {}),
      ...(failure ? { loadError: { ...failure, at: new Date(failure.at).toISOString() } } : {}),
      window: {
        samples: this.cfg.window.samples, periodMs: this.cfg.window.periodMs ?? null, latenessMs: this.cfg.window.latenessMs,
        maxHoldMs: Object.fromEntries(this.cfg.inputs.map((t, i) => [t, this.#plan.maxHoldMs[i]])),
        lastEnd: Number.isFinite(this.#planner.lastEnd) ? new Date(this.#planner.lastEnd).toISOString() : null,
      },
      inferences: this.#inferences,
      clockSteps: this.#clockSteps,
      lastInference: this.#lastInference
        ? { ...this.#lastInference, at: new Date(this.#lastInference.at).toISOString(), runMs: round(this.#lastInference.runMs), totalMs: round(this.#lastInference.totalMs) }
        : null,
      ...(this.#lastError ? { lastError: this.#lastError.message } : {}),
      skipped: { ...this.#skipped },
      ...(this.#skip ? { skipping: { reason: this.#skip.reason, detail: this.#skip.detail, since: new Date(this.#skip.since).toISOString(), count: this.#skip.count } } : {}),
      ...(this.#shadow ? { shadow: this.#shadow.details() } : {}),
      ...(unavailable ? { unavailable: { alertId: unavailable.alertId, since: new Date(unavailable.raisedAt).toISOString(), reason: unavailable.reason } } : {}),
      alerts: (this.#rules?.entries ?? []).map((e) => ({
        rule: e.cfg.name,
        active: e.rule.active !== undefined,
        ...(e.rule.active ? { alertId: e.rule.active.alertId, raisedAt: new Date(e.rule.active.raisedAt).toISOString(), evaluating: !unavailable } : {}),
        ...(e.refused ? { refused: { state: e.refused.state, alertId: e.refused.alertId, message: e.refused.message, attempts: e.refused.attempts, since: new Date(e.refused.since).toISOString() } } : {}),
      })),
    };
  }
}

export { defaultHoldMs } from './model-window-plan.js';

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
