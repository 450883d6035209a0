import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { checkModelsConfig, ModelConfigSchema, modelRules, type ModelConfig } from '../../../src/runtime/config.js';
import { modelConfig } from './runtime-context.js';

function issues(models: ModelConfig[]): string[] {
  const out: string[] = [];
  checkModelsConfig(models, (path, message) => out.push(`${path.join('.')}: ${message}`));
  return out;
}

describe('ModelConfigSchema', () => {
  it('fills the defaults a minimal model needs', () => {
    const cfg = Value.Default(ModelConfigSchema, {
      name: 'm', file: 'm.onnx', inputs: ['t'], alert: { raiseAbove: 1, clearBelow: 0 },
    }) as ModelConfig;
    expect(Value.Check(ModelConfigSchema, cfg)).toBe(true);
    expect(cfg).toMatchObject({
      executionProviders: ['cpu'], requireGpu: false, deviceId: 0, intraOpThreads: 1, normalisation: 'model', watch: true,
      tensorrt: { fp16: false, engineCache: true },
      window: { samples: 1, maxInvalidFraction: 0 },
      schedule: { everyMs: 1000, onNewData: false, timeoutMs: 30000 },
      alert: { kind: 'equipment_fault', severity: 'major', outputIndex: 0, forSamples: 1, forMs: 0, cooldownMs: 0, recentSamples: 10 },
    });
  });

  it('rejects unknown keys and unknown providers', () => {
    const base = modelConfig();
    expect(Value.Check(ModelConfigSchema, { ...base, exectionProviders: ['cpu'] })).toBe(false);
    expect(Value.Check(ModelConfigSchema, { ...base, executionProviders: ['rocm'] })).toBe(false);
    expect(Value.Check(ModelConfigSchema, { ...base, alert: { ...base.alert, raiseAbve: 1 } })).toBe(false);
  });

  it('accepts outputIndex "max"', () => {
    expect(Value.Check(ModelConfigSchema, modelConfig({ alert: { outputIndex: 'max' } }))).toBe(true);
  });

  it('documents every field', () => {
    const undocumented: string[] = [];
    const walk = (schema: { properties?: Record<string, unknown>; description?: string }, path: string): void => {
      for (const [key, child] of Object.entries(schema.properties ?? {})) {
        const c = child as { description?: string; properties?: Record<string, unknown> };
        if (!c.description) undocumented.push(`${path}${key}`);
        walk(c, `${path}${key}.`);
      }
    };
    walk(ModelConfigSchema as never, '');
    expect(undocumented).toEqual([]);
  });
});

describe('checkModelsConfig', () => {
  it('accepts a valid config', () => {
    expect(issues([modelConfig(), modelConfig({ name: 'rul', alert: { raiseAbove: undefined, clearBelow: undefined, raiseBelow: 30, clearAbove: 50 } })])).toEqual([]);
  });

  it('reports a model name used twice', () => {
    expect(issues([modelConfig(), modelConfig()])).toEqual(['1.name: model name "press1" is already used by models[0]']);
  });

  it('needs a hysteresis pair in one direction', () => {
    expect(issues([modelConfig({ alert: { clearBelow: undefined } })])).toEqual([
      expect.stringMatching(/^0\.alert\.raiseAbove: raiseAbove needs clearBelow/),
    ]);
    expect(issues([modelConfig({ alert: { raiseAbove: undefined } })])).toEqual(['0.alert.clearBelow: clearBelow needs raiseAbove']);
    expect(issues([modelConfig({ alert: { raiseAbove: 0.5, clearBelow: 0.8 } })])).toEqual([
      '0.alert.clearBelow: clearBelow (0.8) must not be above raiseAbove (0.5)',
    ]);
    expect(issues([modelConfig({ alert: { raiseAbove: undefined, clearBelow: undefined, raiseBelow: 50, clearAbove: 30 } })])).toEqual([
      '0.alert.clearAbove: clearAbove (30) must not be below raiseBelow (50)',
    ]);
    expect(issues([modelConfig({ alert: { raiseBelow: 3 } })])).toEqual([expect.stringMatching(/^0\.alert: use either raiseAbove\/clearBelow/)]);
    expect(issues([modelConfig({ alert: { raiseAbove: undefined, clearBelow: undefined } })])).toEqual([
      '0.alert: set a threshold: raiseAbove with clearBelow, or raiseBelow with clearAbove',
    ]);
  });

  it('accepts clearBelow equal to raiseAbove (no hysteresis band, still well defined)', () => {
    expect(issues([modelConfig({ alert: { raiseAbove: 0.5, clearBelow: 0.5 } })])).toEqual([]);
  });

  it('checks requireGpu against the providers', () => {
    expect(issues([modelConfig({ requireGpu: true })])).toEqual([
      '0.requireGpu: requireGpu needs a GPU provider: add "tensorrt" or "cuda" to executionProviders',
      '0.executionProviders: requireGpu forbids the CPU fallback: remove "cpu" from executionProviders (or set requireGpu: false)',
    ]);
    expect(issues([modelConfig({ requireGpu: true, executionProviders: ['tensorrt', 'cuda'] })])).toEqual([]);
  });

  it('reports a provider or an input tag listed twice', () => {
    expect(issues([modelConfig({ executionProviders: ['cuda', 'cpu', 'cuda'], inputs: ['a', 'b', 'a'], window: { maxHoldMs: 500 } })])).toEqual([
      '0.executionProviders.2: execution provider "cuda" is listed twice',
      '0.inputs.2: tag "a" is already input 0 of this model',
    ]);
  });

  it('takes several rules under alerts, each with a distinct name, and refuses alert and alerts together', () => {
    const two = modelConfig({
      alerts: [
        { output: 'failure_probability', raiseAbove: 0.8, clearBelow: 0.5 },
        { output: 'failure_mode_probabilities', outputIndex: 'max', raiseAbove: 0.9, clearBelow: 0.5 },
      ],
    });
    expect(issues([two])).toEqual([]);
    expect(modelRules(two).map((r) => r.name)).toEqual(['failure_probability', 'failure_mode_probabilities']);
    const same = modelConfig({ alerts: [{ raiseAbove: 0.8, clearBelow: 0.5 }, { raiseAbove: 0.9, clearBelow: 0.5 }] });
    expect(issues([same])).toEqual([]);
    expect(modelRules(same).map((r) => r.name)).toEqual(['rule0', 'rule1']);
    const clash = modelConfig({ alerts: [{ output: 'p', raiseAbove: 0.8, clearBelow: 0.5 }, { output: 'p', raiseAbove: 0.9, clearBelow: 0.5 }] });
    expect(issues([clash])).toEqual(['0.alerts.1: rule name "p" is already used by alerts[0]: give each rule a distinct name']);
    expect(issues([{ ...two, alert: modelConfig().alert }])).toEqual(['0.alerts: use either alert (one rule) or alerts (a list of rules), not both']);
    expect(issues([{ ...two, alerts: undefined }])).toEqual(['0: a model needs an alert rule: add alert (one rule) or alerts (a list)']);
  });
});
