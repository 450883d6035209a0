import { randomUUID } from 'node:crypto';
import type { AlertEvent } from '../core/alert.js';
import type { RuleTransition } from './alert-rule.js';
import type { ModelConfig, NamedRule } from './config.js';

/** What the alert says about the model that produced it. */
export interface AlertModelInfo {
  name: string;
  /** `<metadata version>+<sha256 prefix>` or `sha256:<prefix>`. */
  version: string;
  /** `sha256:<hex>` of the model file. */
  hash: string;
  provider: string;
}

export interface AlertInput {
  gatewayId: string;
  cfg: ModelConfig;
  /** The rule that made the transition. */
  rule: NamedRule;
  model: AlertModelInfo;
  transition: RuleTransition;
  output: { name: string; value: number; label?: string | undefined };
  inputs: AlertEvent['inputs'];
}

/** Builds the public alert payload (documented in docs/alert-payload.md) for a raise or a clear. */
export function buildAlertEvent(a: AlertInput, newEventId: () => string = randomUUID): AlertEvent {
  const { cfg, transition } = a;
  const r = a.rule;
  const rule: AlertEvent['rule'] = { name: r.name };
  for (const key of ['raiseAbove', 'clearBelow', 'raiseBelow', 'clearAbove'] as const) {
    if (r[key] !== undefined) rule[key] = r[key];
  }
  rule.forSamples = r.forSamples;
  rule.forMs = r.forMs;
  const output: AlertEvent['output'] = { name: a.output.name, value: a.output.value };
  if (a.output.label !== undefined) output.label = a.output.label;
  const event: AlertEvent = {
    schema: 1,
    eventId: newEventId(),
    alertId: transition.occurrence.alertId,
    state: transition.type === 'raise' ? 'raised' : 'cleared',
    kind: r.kind,
    severity: r.severity,
    gateway: a.gatewayId,
    model: { name: a.model.name, version: a.model.version, hash: a.model.hash },
    provider: a.model.provider,
    output,
    rule,
    // Whole milliseconds in the payload (a source may deliver sub-millisecond timestamps).
    ts: Math.round(transition.ts),
    raisedAt: Math.round(transition.occurrence.raisedAt),
    inputs: a.inputs,
    message: alertMessage(a),
  };
  if (cfg.asset !== undefined) event.asset = cfg.asset;
  if (transition.type === 'clear') event.clearedAt = Math.round(transition.clearedAt);
  return event;
}

function alertMessage(a: AlertInput): string {
  const { cfg, transition, output } = a;
  const r = a.rule;
  const what = `${output.name}${output.label !== undefined ? ` (${output.label})` : ''}`;
  const where = cfg.asset !== undefined ? ` on ${cfg.asset}` : '';
  const value = formatValue(output.value);
  const debounce = r.forSamples > 1 || r.forMs > 0
    ? ` for ${r.forSamples > 1 ? `${r.forSamples} windows` : ''}${r.forSamples > 1 && r.forMs > 0 ? ' and ' : ''}${r.forMs > 0 ? `${r.forMs} ms` : ''}`
    : '';
  if (transition.type === 'raise') {
    const threshold = r.raiseAbove !== undefined ? `above ${r.raiseAbove}` : `below ${r.raiseBelow}`;
    return `${r.severity} ${r.kind}${where}: model ${cfg.name} ${what} is ${value}, ${threshold}${debounce}`;
  }
  const threshold = r.raiseAbove !== undefined ? `below ${r.clearBelow ?? r.raiseAbove}` : `above ${r.clearAbove ?? r.raiseBelow}`;
  return `cleared ${r.kind}${where}: model ${cfg.name} ${what} is back ${threshold} (${value})`;
}

function formatValue(value: number): string {
  return Number.isInteger(value) ? String(value) : Number(value.toPrecision(4)).toString();
}

/** What an availability alert (model_unavailable, source_unavailable) says. */
export interface AvailabilityInput {
  gatewayId: string;
  kind: 'model_unavailable' | 'source_unavailable';
  severity: AlertEvent['severity'];
  state: 'raised' | 'cleared';
  alertId: string;
  /** Gateway wall-clock time of the event, epoch ms: an unavailable model or source has no source time to give. */
  ts: number;
  raisedAt: number;
  /** For model_unavailable: the model as last loaded (or as configured when it never loaded). */
  model?: AlertModelInfo;
  source?: string;
  asset?: string;
  /** Why, in words an engineer can act on. */
  reason: string;
  unevaluatedAlerts?: string[];
}

/** The payload of a model_unavailable or source_unavailable raise or clear (docs/alert-payload.md). */
export function buildAvailabilityEvent(a: AvailabilityInput, newEventId: () => string = randomUUID): AlertEvent {
  const subject = a.kind === 'model_unavailable' ? `model ${a.model?.name ?? '?'}` : `source ${a.source ?? '?'}`;
  const event: AlertEvent = {
    schema: 1,
    eventId: newEventId(),
    alertId: a.alertId,
    state: a.state,
    kind: a.kind,
    severity: a.severity,
    gateway: a.gatewayId,
    provider: a.model?.provider ?? 'none',
    output: { name: 'available', value: a.state === 'raised' ? 0 : 1 },
    rule: {},
    ts: Math.round(a.ts),
    raisedAt: Math.round(a.raisedAt),
    inputs: {},
    message: a.state === 'raised' ? `${a.severity} ${a.kind}: ${subject} ${a.reason}` : `cleared ${a.kind}: ${subject} ${a.reason}`,
  };
  if (a.model) event.model = { name: a.model.name, version: a.model.version, hash: a.model.hash };
  if (a.source !== undefined) event.source = a.source;
  if (a.asset !== undefined) event.asset = a.asset;
  if (a.unevaluatedAlerts && a.unevaluatedAlerts.length > 0) event.unevaluatedAlerts = a.unevaluatedAlerts;
  if (a.state === 'cleared') event.clearedAt = Math.round(a.ts);
  return event;
}
