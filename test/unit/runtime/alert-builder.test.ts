import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { buildAlertEvent, buildAvailabilityEvent, type AlertInput } from '../../../src/runtime/alert-builder.js';
import { AlertRule } from '../../../src/runtime/alert-rule.js';
import { modelRules } from '../../../src/runtime/config.js';
import { modelConfig, ROOT } from './runtime-context.js';

/** The JSON Schema published in docs/alert-payload.md (the last ```json block). */
function documentedSchema(): object {
  const doc = readFileSync(join(ROOT, 'docs/alert-payload.md'), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return JSON.parse(blocks[blocks.length - 1]!) as object;
}

const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(documentedSchema());

const model = { name: 'press1', version: '1.0.0+0123456789ab', hash: `sha256:${'0123456789abcdef'.repeat(4)}`, provider: 'cpu' };
const inputs = { 'press1.a': [[1000, 0.5], [2000, null]] as Array<[number, number | null]>, 'press1.b': [[1000, 11], [2000, 12]] as Array<[number, number | null]> };

function events(cfg = modelConfig({ alert: { forSamples: 2 } })) {
  const named = modelRules(cfg)[0]!;
  const rule = new AlertRule(named, () => 'occ-1');
  rule.evaluate(0.9, 1000);
  const raise = rule.evaluate(0.95, 2000)!;
  const clear = rule.evaluate(0.1, 3000) ?? rule.evaluate(0.1, 4000)!;
  const base: Omit<AlertInput, 'transition' | 'output'> = { gatewayId: 'gw-1', cfg, rule: named, model, inputs };
  let n = 0;
  const id = () => `evt-${++n}`;
  return {
    raised: buildAlertEvent({ ...base, transition: raise, output: { name: 'failure_probability', value: 0.95 } }, id),
    cleared: buildAlertEvent({ ...base, transition: clear, output: { name: 'failure_probability', value: 0.1 } }, id),
  };
}

describe('buildAlertEvent', () => {
  it('says what an engineer needs to act', () => {
    const { raised } = events();
    expect(raised).toEqual({
      schema: 1,
      eventId: 'evt-1',
      alertId: 'occ-1',
      state: 'raised',
      kind: 'equipment_fault',
      severity: 'major',
      gateway: 'gw-1',
      asset: 'line-1/press-1',
      model: { name: 'press1', version: '1.0.0+0123456789ab', hash: model.hash },
      provider: 'cpu',
      output: { name: 'failure_probability', value: 0.95 },
      rule: { name: 'alert', raiseAbove: 0.8, clearBelow: 0.5, forSamples: 2, forMs: 0 },
      ts: 2000,
      raisedAt: 2000,
      inputs,
      message: 'major equipment_fault on line-1/press-1: model press1 failure_probability is 0.95, above 0.8 for 2 windows',
    });
  });

  it('a clear shares the alertId, has its own eventId and says when it was raised and cleared', () => {
    const { raised, cleared } = events();
    expect(cleared).toMatchObject({ state: 'cleared', alertId: raised.alertId, raisedAt: 2000, ts: 4000, clearedAt: 4000 });
    expect(cleared.eventId).not.toBe(raised.eventId);
    expect(cleared.message).toBe('cleared equipment_fault on line-1/press-1: model press1 failure_probability is back below 0.5 (0.1)');
  });

  it('describes a falling rule and a labelled output', () => {
    const cfg = modelConfig({
      asset: undefined,
      alert: { raiseAbove: undefined, clearBelow: undefined, raiseBelow: 30, clearAbove: 50, kind: 'degradation', severity: 'warning', forMs: 60000 },
    });
    const named = modelRules(cfg)[0]!;
    const rule = new AlertRule(named, () => 'occ');
    rule.evaluate(20, 0);
    const t = rule.evaluate(20, 60000)!;
    const e = buildAlertEvent({ gatewayId: 'gw', cfg, rule: named, model, inputs: {}, transition: t, output: { name: 'rul_cycles', value: 20, label: 'engine' } });
    expect(e).toMatchObject({ rule: { raiseBelow: 30, clearAbove: 50, forMs: 60000 }, output: { label: 'engine' } });
    expect(e).not.toHaveProperty('asset');
    expect(e.message).toBe('warning degradation: model press1 rul_cycles (engine) is 20, below 30 for 60000 ms');
  });

  it('matches the JSON Schema documented in docs/alert-payload.md', () => {
    const { raised, cleared } = events();
    for (const e of [raised, cleared]) {
      expect(validate(JSON.parse(JSON.stringify(e))), JSON.stringify(validate.errors)).toBe(true);
    }
    // The schema does reject what it should: a raise with clearedAt, an unknown state.
    expect(validate({ ...raised, clearedAt: 1 })).toBe(false);
    expect(validate({ ...raised, state: 'acknowledged' })).toBe(false);
  });
});

describe('availability alerts', () => {
  it('model_unavailable and source_unavailable raises and clears match the documented JSON Schema', () => {
    const raised = buildAvailabilityEvent({
      gatewayId: 'gw-1', kind: 'model_unavailable', severity: 'major', state: 'raised', alertId: 'a-1', ts: 1000, raisedAt: 1000,
      model, reason: 'cannot infer: tag press1.b has no good sample in the window', unevaluatedAlerts: ['occ-1'],
    }, () => 'e-1');
    const cleared = buildAvailabilityEvent({
      gatewayId: 'gw-1', kind: 'model_unavailable', severity: 'major', state: 'cleared', alertId: 'a-1', ts: 5000, raisedAt: 1000,
      model, reason: 'infers again',
    }, () => 'e-2');
    const source = buildAvailabilityEvent({
      gatewayId: 'gw-1', kind: 'source_unavailable', severity: 'major', state: 'raised', alertId: 's-1', ts: 1000, raisedAt: 1000,
      source: 'opcua/plc1', reason: 'is down: not connected to opc.tcp://plc1:4840',
    }, () => 'e-3');
    for (const e of [raised, cleared, source]) expect(validate(e), JSON.stringify(validate.errors)).toBe(true);
    expect(raised).toMatchObject({ kind: 'model_unavailable', output: { name: 'available', value: 0 }, unevaluatedAlerts: ['occ-1'], model: { name: 'press1' } });
    expect(cleared).toMatchObject({ state: 'cleared', clearedAt: 5000, output: { value: 1 } });
    expect(source).toMatchObject({ source: 'opcua/plc1', provider: 'none' });
    expect(source).not.toHaveProperty('model');
    expect(source.message).toBe('major source_unavailable: source opcua/plc1 is down: not connected to opc.tcp://plc1:4840');
    // A model alert without its model is not a valid payload.
    const { model: _dropped, ...noModel } = raised;
    expect(validate(noModel)).toBe(false);
  });
});
