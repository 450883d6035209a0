import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from '../core/metrics.js';

/** Seconds: 50 µs (a trivial model on a CPU) to 10 s (a model far too slow for its schedule). */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/**
 * The runtime's metrics for one model (label `model`). Shared metric objects live in the registry across
 * reloads; `dispose` removes this model's label values.
 */
export class RuntimeMetrics {
  readonly #inferences;
  readonly #latency;
  readonly #provider;
  readonly #raised;
  readonly #cleared;
  readonly #skipped;
  readonly #active;
  readonly #output;
  readonly #reloads;
  readonly #enqueueFailures;
  readonly #nonFinite;
  readonly #labelSets = new Map<string, Set<string>>();
  #currentProvider: string | undefined;

  constructor(registry: Registry, private readonly model: string) {
    this.#inferences = counter(registry, {
      name: 'lineguard_model_inferences_total', help: 'Inferences run, by result (ok, error, timeout).', labelNames: ['model', 'result'] as const,
    });
    this.#latency = histogram(registry, {
      name: 'lineguard_model_inference_seconds',
      help: 'Inference latency: stage="run" is session.run in the worker, stage="total" the whole gateway path (window read, features, worker round trip, rule).',
      labelNames: ['model', 'stage'] as const, buckets: LATENCY_BUCKETS,
    });
    this.#provider = gauge(registry, {
      name: 'lineguard_model_provider', help: 'Execution provider that really runs the model (1 for the provider in use).', labelNames: ['model', 'provider'] as const,
    });
    this.#raised = counter(registry, { name: 'lineguard_model_alerts_raised_total', help: 'Alerts raised.', labelNames: ['model'] as const });
    this.#cleared = counter(registry, { name: 'lineguard_model_alerts_cleared_total', help: 'Alerts cleared.', labelNames: ['model'] as const });
    this.#skipped = counter(registry, {
      name: 'lineguard_model_inferences_skipped_total', help: 'Inferences not run, by reason.', labelNames: ['model', 'reason'] as const,
    });
    this.#active = gauge(registry, { name: 'lineguard_model_alert_active', help: '1 while the model has an active alert.', labelNames: ['model'] as const });
    this.#output = gauge(registry, {
      name: 'lineguard_model_output', help: 'Latest value of each one-element model output.', labelNames: ['model', 'output'] as const,
    });
    this.#reloads = counter(registry, {
      name: 'lineguard_model_loads_total', help: 'Model loads (start, hot swap, recovery), by result (ok, failed).', labelNames: ['model', 'result'] as const,
    });
    this.#enqueueFailures = counter(registry, {
      name: 'lineguard_model_alert_enqueue_failures_total', help: 'Alerts the outbox refused (retried on the next inference).', labelNames: ['model'] as const,
    });
    this.#nonFinite = counter(registry, {
      name: 'lineguard_model_nonfinite_outputs_total',
      help: 'Inferences whose value for a rule was NaN or infinite (never evaluated by the rule), by output.',
      labelNames: ['model', 'output'] as const,
    });
    this.#active.set({ model }, 0);
  }

  nonFinite(output: string): void {
    this.#track('nonFinite', output);
    this.#nonFinite.inc({ model: this.model, output });
  }

  inference(result: 'ok' | 'error' | 'timeout'): void {
    this.#track('inferences', result);
    this.#inferences.inc({ model: this.model, result });
  }

  latency(stage: 'run' | 'total', ms: number): void {
    this.#track('latency', stage);
    this.#latency.observe({ model: this.model, stage }, ms / 1000);
  }

  provider(provider: string): void {
    if (this.#currentProvider !== undefined && this.#currentProvider !== provider) this.#provider.remove({ model: this.model, provider: this.#currentProvider });
    this.#currentProvider = provider;
    this.#provider.set({ model: this.model, provider }, 1);
  }

  raised(): void {
    this.#raised.inc({ model: this.model });
    this.#active.set({ model: this.model }, 1);
  }

  cleared(): void {
    this.#cleared.inc({ model: this.model });
    this.#active.set({ model: this.model }, 0);
  }

  alertActive(active: boolean): void {
    this.#active.set({ model: this.model }, active ? 1 : 0);
  }

  skipped(reason: string): void {
    this.#track('skipped', reason);
    this.#skipped.inc({ model: this.model, reason });
  }

  output(name: string, value: number): void {
    this.#track('output', name);
    this.#output.set({ model: this.model, output: name }, value);
  }

  load(result: 'ok' | 'failed'): void {
    this.#track('loads', result);
    this.#reloads.inc({ model: this.model, result });
  }

  enqueueFailed(): void {
    this.#enqueueFailures.inc({ model: this.model });
  }

  /** Removes this model's label values (the model was stopped or removed from the config). */
  dispose(): void {
    const model = this.model;
    for (const result of this.#labels('inferences')) this.#inferences.remove({ model, result });
    for (const stage of this.#labels('latency')) this.#latency.remove({ model, stage });
    for (const reason of this.#labels('skipped')) this.#skipped.remove({ model, reason });
    for (const output of this.#labels('output')) this.#output.remove({ model, output });
    for (const output of this.#labels('nonFinite')) this.#nonFinite.remove({ model, output });
    for (const result of this.#labels('loads')) this.#reloads.remove({ model, result });
    if (this.#currentProvider !== undefined) this.#provider.remove({ model, provider: this.#currentProvider });
    this.#raised.remove({ model });
    this.#cleared.remove({ model });
    this.#active.remove({ model });
    this.#enqueueFailures.remove({ model });
  }

  #track(metric: string, label: string): void {
    let set = this.#labelSets.get(metric);
    if (!set) this.#labelSets.set(metric, (set = new Set()));
    set.add(label);
  }

  #labels(metric: string): string[] {
    return [...(this.#labelSets.get(metric) ?? [])];
  }
}
