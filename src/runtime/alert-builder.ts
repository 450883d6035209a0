import { randomUUID } from 'node:crypto';
import type { AlertEvent } from '../core/alert.js';
import type { RuleTransition } from './alert-rule.js';
import type { ModelConfig } from './config.js';

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
  model: AlertModelInfo;
  transition: RuleTransition;
  output: { name: string; value: number; label?: string | undefined };
  inputs: AlertEvent['inputs'];
}

/** Builds the public alert payload (documented in docs/alert-payload.md) for a raise or a clear. */
export function buildAlertEvent(a: AlertInput, newEventId: () => string = randomUUID): AlertEvent {
  const { cfg, transition } = a;
  const rule: AlertEvent['rule'] = {};
  for (const key of ['raiseAbove', 'clearBelow', 'raiseBelow', 'clearAbove'] as const) {
    if (cfg.alert[key] !== undefined) rule[key] = cfg.alert[key];
  }
  rule.forSamples = cfg.alert.forSamples;
  rule.forMs = cfg.alert.forMs;
  const output: AlertEvent['output'] = { name: a.output.name, value: a.output.value };
  if (a.output.label !== undefined) output.label = a.output.label;
  const event: AlertEvent = {
    schema: 1,
    eventId: newEventId(),
    alertId: transition.occurrence.alertId,
    state: transition.type === 'raise' ? 'raised' : 'cleared',
    kind: cfg.alert.kind,
    severity: cfg.alert.severity,
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
  const what = `${output.name}${output.label !== undefined ? ` (${output.label})` : ''}`;
  const where = cfg.asset !== undefined ? ` on ${cfg.asset}` : '';
  const value = formatValue(output.value);
  const debounce = cfg.alert.forSamples > 1 || cfg.alert.forMs > 0
    ? ` for ${cfg.alert.forSamples > 1 ? `${cfg.alert.forSamples} inferences` : ''}${cfg.alert.forSamples > 1 && cfg.alert.forMs > 0 ? ' and ' : ''}${cfg.alert.forMs > 0 ? `${cfg.alert.forMs} ms` : ''}`
    : '';
  const r = cfg.alert;
  if (transition.type === 'raise') {
    const threshold = r.raiseAbove !== undefined ? `above ${r.raiseAbove}` : `below ${r.raiseBelow}`;
    return `${cfg.alert.severity} ${cfg.alert.kind}${where}: model ${cfg.name} ${what} is ${value}, ${threshold}${debounce}`;
  }
  const threshold = r.raiseAbove !== undefined ? `below ${r.clearBelow ?? r.raiseAbove}` : `above ${r.clearAbove ?? r.raiseBelow}`;
  return `cleared ${cfg.alert.kind}${where}: model ${cfg.name} ${what} is back ${threshold} (${value})`;
}

function formatValue(value: number): string {
  return Number.isInteger(value) ? String(value) : Number(value.toPrecision(4)).toString();
}
