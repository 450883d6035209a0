import { describe, expect, it } from 'vitest';
import type { LoadResult, OutputTensors } from '../../../src/runtime/inference-protocol.js';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { checkWarmupOutputs, ModelMismatchError, resolveModelIo, ruleValue } from '../../../src/runtime/model-io.js';
import { fixture, modelConfig } from './runtime-context.js';

function load(input: { type?: string; shape: Array<number | string> }, outputs = [{ name: 'failure_probability', type: 'float32', shape: ['batch', 1] as Array<number | string> }]): LoadResult {
  return { provider: 'cpu', failed: [], createMs: 1, inputs: [{ name: 'input', ...input }], outputs };
}

const lastValueIo = load({ type: 'float32', shape: ['batch', 4, 2] }, [
  { name: 'failure_probability', type: 'float32', shape: ['batch', 1] },
  { name: 'window_mean', type: 'float32', shape: ['batch', 2] },
]);

describe('resolveModelIo', async () => {
  const withMeta = await readModelFile(fixture('last-value.onnx'));
  const noMeta = await readModelFile(fixture('no-metadata.onnx'));

  it('feeds [1, window, features] and z-scores with the metadata', () => {
    const io = resolveModelIo(modelConfig(), withMeta, lastValueIo);
    expect(io).toMatchObject({ inputName: 'input', inputDims: [1, 4, 2], declaredInputShape: '[batch, 4, 2]', featureNames: ['a', 'b'] });
    expect(Array.from(io.normalisation!.mean)).toEqual([0, 10]);
    expect(Array.from(io.normalisation!.std)).toEqual([1, 2]);
    expect(io.rule).toEqual({ rule: 'alert', name: 'failure_probability', index: 0, kind: 'probability', labels: undefined });
  });

  it('feeds raw values without metadata or with normalisation none', () => {
    expect(resolveModelIo(modelConfig(), noMeta, lastValueIo)).toMatchObject({
      normalisation: undefined, normalisationNote: 'none (the model has no lineguard metadata)',
    });
    expect(resolveModelIo(modelConfig({ normalisation: 'none' }), withMeta, lastValueIo)).toMatchObject({
      normalisation: undefined, normalisationNote: 'none (config)',
    });
  });

  it('names both shapes on a mismatch', () => {
    const cfg = modelConfig({ window: { samples: 4 }, inputs: ['a', 'b'] });
    expect(() => resolveModelIo(cfg, noMeta, load({ type: 'float32', shape: ['batch', 8, 3] }))).toThrow(
      new ModelMismatchError('model input "input" has shape [batch, 8, 3] but the config expects [batch, 4, 2] (window.samples 4 × 2 input tags)'),
    );
    expect(() => resolveModelIo(cfg, noMeta, load({ type: 'float32', shape: [8, 4, 2] }))).toThrow(/has shape \[8, 4, 2\]/);
    expect(() => resolveModelIo(cfg, noMeta, load({ type: 'float32', shape: ['batch', 8] }))).toThrow(/has shape \[batch, 8\]/);
  });

  it('accepts symbolic window/feature dimensions and a rank-2 input for a one-row window', () => {
    expect(resolveModelIo(modelConfig(), noMeta, load({ type: 'float32', shape: ['batch', 'time', 'features'] })).inputDims).toEqual([1, 4, 2]);
    expect(resolveModelIo(modelConfig({ window: { samples: 1 } }), noMeta, load({ type: 'float32', shape: ['batch', 2] })).inputDims).toEqual([1, 2]);
  });

  it('refuses another element type, several inputs, and metadata that disagrees with the config', () => {
    expect(() => resolveModelIo(modelConfig(), noMeta, load({ type: 'float64', shape: ['batch', 4, 2] }))).toThrow(
      'model input "input" is float64 [batch, 4, 2]; the config feeds float32 [batch, 4, 2] (window.samples 4 × 2 input tags)',
    );
    const two = { ...lastValueIo, inputs: [...lastValueIo.inputs, { name: 'mask', type: 'float32', shape: ['batch', 4] }] };
    expect(() => resolveModelIo(modelConfig(), noMeta, two)).toThrow(/the model has 2 inputs \(input, mask\)/);
    expect(() => resolveModelIo(modelConfig({ inputs: ['a', 'b', 'c'] }), withMeta, load({ type: 'float32', shape: ['batch', 4, 'f'] }))).toThrow(
      'the model metadata describes 2 input features (a, b) but the config lists 3 input tags (a, b, c)',
    );
    expect(() => resolveModelIo(modelConfig({ window: { samples: 8 } }), withMeta, load({ type: 'float32', shape: ['batch', 't', 2] }))).toThrow(
      'the model metadata says window 4 but the config has window.samples 8',
    );
  });

  it('checks the rule output and index', () => {
    expect(() => resolveModelIo(modelConfig({ alert: { output: 'rul' } }), withMeta, lastValueIo)).toThrow(
      'alert.output "rul" is not an output of the model (outputs: failure_probability, window_mean)',
    );
    expect(() => resolveModelIo(modelConfig({ alert: { output: 'window_mean', outputIndex: 2 } }), withMeta, lastValueIo)).toThrow(
      'alert.outputIndex 2 is outside output "window_mean" [batch, 2] (2 elements per inference)',
    );
    expect(resolveModelIo(modelConfig({ alert: { output: 'window_mean', outputIndex: 1 } }), withMeta, lastValueIo).rule).toMatchObject({
      name: 'window_mean', index: 1, kind: 'regression',
    });
  });
});

describe('ruleValue / checkWarmupOutputs', () => {
  const outputs: OutputTensors = { p: { type: 'float32', dims: [1, 3], data: Float64Array.of(0.2, 0.7, 0.1) } };

  it('reads the configured element, or the largest with its label', () => {
    expect(ruleValue({ rule: 'alert', name: 'p', index: 1, kind: 'probabilities', labels: ['ok', 'wear', 'heat'] }, outputs)).toEqual({ value: 0.7, index: 1, label: 'wear' });
    expect(ruleValue({ rule: 'alert', name: 'p', index: 'max', kind: undefined, labels: ['ok', 'wear', 'heat'] }, outputs)).toEqual({ value: 0.7, index: 1, label: 'wear' });
    expect(ruleValue({ rule: 'alert', name: 'p', index: 2, kind: undefined, labels: undefined }, outputs)).toEqual({ value: 0.1, index: 2 });
    expect(ruleValue({ rule: 'alert', name: 'q', index: 0, kind: undefined, labels: undefined }, outputs).value).toBeNaN();
    // A model with a dynamic output shape may return fewer elements than at warm-up: NaN (skipped), saying why.
    expect(ruleValue({ rule: 'alert', name: 'p', index: 3, kind: undefined, labels: undefined }, outputs)).toMatchObject({
      value: Number.NaN, problem: 'alert.outputIndex 3 is outside output "p" [1, 3]',
    });
    expect(ruleValue({ rule: 'alert', name: 'q', index: 0, kind: undefined, labels: undefined }, outputs).problem).toBe('the model returned no output "q"');
  });

  it('refuses an index outside the real output', async () => {
    const file = await readModelFile(fixture('no-metadata.onnx'));
    const io = resolveModelIo(modelConfig({ alert: { output: 'failure_probability', outputIndex: 0 } }), file, load({ type: 'float32', shape: ['batch', 4, 2] }, [{ name: 'p', type: 'float32', shape: ['batch', 'k'] }, { name: 'failure_probability', type: 'float32', shape: ['batch', 'k'] }]));
    const p = { ...io.rule, name: 'p', index: 3 };
    expect(() => checkWarmupOutputs({ ...io, rule: p, rules: [p] }, outputs)).toThrow('rule alert: outputIndex 3 is outside output "p" (the model returned [1, 3])');
    expect(() => checkWarmupOutputs(io, outputs)).toThrow('the model did not return output "failure_probability"');
  });
});
