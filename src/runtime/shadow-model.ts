import { isAbsolute, resolve } from 'node:path';
import type { Counter, Gauge } from 'prom-client';
import type { ComponentContext } from '../core/component.js';
import type { InferenceRecorder } from '../core/inference-record.js';
import { counter, gauge } from '../core/metrics.js';
import { wallClockMs } from '../core/source-clock.js';
import type { TagWindow } from '../core/window.js';
import { AlertRule } from './alert-rule.js';
import { modelRules, type ModelConfig } from './config.js';
import { assembleFeatures } from './feature-assembly.js';
import { outputValues, ruleValue } from './model-io.js';
import { ModelSlot } from './model-slot.js';
import { RuntimeMetrics } from './runtime-metrics.js';

/** Windows waiting for the shadow at most; beyond it a window is not shadowed (counted): the live model never waits. */
const MAX_PENDING = 16;

/** What the live model made of one window: per rule the value it read (NaN: none) and the transition, if any. */
export interface LiveOutcome {
  values: number[];
  transitions: ReadonlyArray<{ rule: string; type: 'raise' | 'clear' }>;
}

/**
 * A candidate model run beside the live one (`models[].shadow`): each window the live model evaluated is handed to
 * it (the same assembled window; its features are assembled with the candidate's own normalisation, so a retrained
 * model with new training statistics is fed as it expects; with the same metadata the input is the live one, bit for
 * bit). Its outputs are recorded in the inference log as model `<name>#shadow` (`#` cannot occur in a model name);
 * its rules run on their own state machines and never reach the outbox: it never publishes an alert. Agreement is
 * exported per rule: the mean absolute difference of the values the rule reads, and the windows where the live and
 * the shadow rule would have raised or cleared differently.
 *
 * It runs off the live path: windows are queued (at most MAX_PENDING) and evaluated in order after the live
 * inference; a shadow that cannot keep up skips windows (counted), never delays the live model.
 */
export class ShadowModel {
  readonly name: string;
  readonly #slot: ModelSlot;
  readonly #metrics: RuntimeMetrics;
  readonly #rules: Array<{ name: string; machine: AlertRule }>;
  readonly #windows: Counter<'model' | 'result'>;
  readonly #absDiff: Counter<'model' | 'rule'>;
  readonly #compared: Counter<'model' | 'rule'>;
  readonly #meanAbsDiff: Gauge<'model' | 'rule'>;
  readonly #disagreements: Counter<'model' | 'rule'>;
  readonly #sum: number[];
  readonly #count: number[];
  readonly #differing: number[];
  #queue: Promise<void> = Promise.resolve();
  #pending = 0;
  #skipped = 0;
  #evaluated = 0;
  #stopped = false;

  constructor(
    private readonly live: ModelConfig,
    file: string,
    private readonly ctx: ComponentContext,
    private readonly deps: { baseDir: string; recorder?: InferenceRecorder | undefined },
  ) {
    this.name = `${live.name}#shadow`;
    const path = isAbsolute(file) ? file : resolve(deps.baseDir, file);
    this.#metrics = new RuntimeMetrics(ctx.metrics, this.name);
    this.#slot = new ModelSlot({ cfg: { ...live, name: this.name, file: path }, path, stateDir: ctx.stateDir, log: ctx.log.child({ shadow: path }), metrics: this.#metrics });
    // Its own state machines, fresh at each start: the shadow's would-be alerts are compared, never published.
    this.#rules = modelRules(live).map((r) => ({ name: r.name, machine: new AlertRule(r, () => 'shadow') }));
    this.#sum = this.#rules.map(() => 0);
    this.#count = this.#rules.map(() => 0);
    this.#differing = this.#rules.map(() => 0);
    const m = ctx.metrics;
    this.#windows = counter(m, { name: 'lineguard_shadow_windows_total', help: 'Windows handed to a shadow model, by result (ok, skipped, busy, failed).', labelNames: ['model', 'result'] });
    this.#absDiff = counter(m, { name: 'lineguard_shadow_abs_diff_sum', help: 'Sum of |shadow − live| of the value each rule reads (divide by lineguard_shadow_compared_total).', labelNames: ['model', 'rule'] });
    this.#compared = counter(m, { name: 'lineguard_shadow_compared_total', help: 'Windows where both the live and the shadow model gave a rule a finite value.', labelNames: ['model', 'rule'] });
    this.#meanAbsDiff = gauge(m, { name: 'lineguard_shadow_mean_abs_diff', help: 'Mean |shadow − live| of the value each rule reads, since the start.', labelNames: ['model', 'rule'] });
    this.#disagreements = counter(m, {
      name: 'lineguard_shadow_event_disagreements_total',
      help: 'Windows where the shadow rule would have raised or cleared and the live rule did not, or the other way round.', labelNames: ['model', 'rule'],
    });
  }

  /** Loads the candidate in the background (a candidate that does not load is reported, never stops the live model). */
  start(): void {
    void this.#slot.reload();
  }

  /** One window the live model evaluated, in order. Never throws, never waits. */
  observe(end: number, window: TagWindow, live: LiveOutcome): void {
    if (this.#stopped) return;
    if (this.#pending >= MAX_PENDING) {
      this.#skipped++;
      this.#windows.inc({ model: this.live.name, result: 'busy' });
      return;
    }
    this.#pending++;
    this.#queue = this.#queue
      .then(() => this.#evaluate(end, window, live))
      .catch((err: unknown) => this.ctx.log.error({ err }, 'shadow model evaluation failed'))
      .finally(() => this.#pending--);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.race([this.#queue, new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.#slot.stop();
    this.#metrics.dispose();
    for (const rule of this.#rules) {
      const labels = { model: this.live.name, rule: rule.name };
      for (const metric of [this.#absDiff, this.#compared, this.#meanAbsDiff, this.#disagreements]) metric.remove(labels);
    }
    for (const result of ['ok', 'skipped', 'busy', 'failed']) this.#windows.remove({ model: this.live.name, result });
  }

  /** For /healthz (in the live model's details). */
  details(): Record<string, unknown> {
    const model = this.#slot.model;
    const failure = this.#slot.failure;
    return {
      file: this.#slot.model?.file.path ?? null,
      ...(model ? { version: model.file.version, provider: model.provider } : {}),
      ...(failure ? { loadError: failure.message } : {}),
      evaluated: this.#evaluated,
      skipped: this.#skipped,
      agreement: this.#rules.map((r, i) => ({
        rule: r.name, compared: this.#count[i]!, meanAbsDiff: this.#count[i]! > 0 ? this.#sum[i]! / this.#count[i]! : null,
        eventDisagreements: this.#differing[i]!, wouldBeActive: r.machine.active !== undefined,
      })),
    };
  }

  async #evaluate(end: number, window: TagWindow, live: LiveOutcome): Promise<void> {
    const model = this.#slot.model;
    const at = wallClockMs();
    if (!model) {
      this.#windows.inc({ model: this.live.name, result: 'skipped' });
      return;
    }
    const features = assembleFeatures(window, {
      tags: this.live.inputs, samples: this.live.window.samples, normalisation: model.io.normalisation, maxInvalidFraction: this.live.window.maxInvalidFraction,
    });
    if (!features.ok) {
      this.#windows.inc({ model: this.live.name, result: 'skipped' });
      this.#record({ model: this.name, ts: end, at, version: model.file.version, skipped: features.reason, detail: features.detail });
      return;
    }
    let outputs;
    try {
      outputs = (await model.infer(features.input)).outputs;
    } catch (err) {
      this.#windows.inc({ model: this.live.name, result: 'failed' });
      this.#record({ model: this.name, ts: end, at, version: model.file.version, skipped: 'inference_failed', detail: (err as Error).message });
      if (!model.alive) this.#slot.modelFailed(model, err as Error);
      return;
    }
    this.#evaluated++;
    this.#windows.inc({ model: this.live.name, result: 'ok' });
    this.#record({ model: this.name, ts: end, at, version: model.file.version, outputs: outputValues(outputs) });
    this.#rules.forEach((rule, i) => {
      const out = model.io.rules[i];
      const value = out ? ruleValue(out, outputs).value : Number.NaN;
      const labels = { model: this.live.name, rule: rule.name };
      const liveValue = live.values[i] ?? Number.NaN;
      if (Number.isFinite(value) && Number.isFinite(liveValue)) {
        const diff = Math.abs(value - liveValue);
        this.#sum[i]! += diff;
        this.#count[i]!++;
        this.#absDiff.inc(labels, diff);
        this.#compared.inc(labels);
        this.#meanAbsDiff.set(labels, this.#sum[i]! / this.#count[i]!);
      }
      const mine = rule.machine.evaluate(value, end)?.type;
      const theirs = live.transitions.find((t) => t.rule === rule.name)?.type;
      if (mine !== theirs) {
        this.#differing[i]!++;
        this.#disagreements.inc(labels);
      }
    });
  }

  #record(row: Parameters<InferenceRecorder['record']>[0]): void {
    try {
      this.deps.recorder?.record(row);
    } catch (err) {
      this.ctx.log.debug({ err }, 'shadow inference not recorded');
    }
  }
}
