import { modelRules, type ModelConfig, type NamedRule } from './config.js';
import type { LoadResult, OutputTensors, ValueInfo } from './inference-protocol.js';
import type { ModelFile } from './model-file.js';

/**
 * The contract between a loaded model and its config: what is fed (one float32 input [batch, window, features]),
 * how features are normalised, and which output element the alert rule reads. Checked once per load, so a wrong
 * model file is refused with a message naming both shapes instead of producing nonsense alerts.
 */
export interface ModelIo {
  inputName: string;
  /** Dims passed to session.run: [1, samples, features], or [1, features] for a rank-2 model with a 1-row window. */
  inputDims: number[];
  /** The model input shape as declared, e.g. `[batch, 4, 2]`. */
  declaredInputShape: string;
  outputs: ValueInfo[];
  /** The output element each alert rule reads, in the order of the config's rules. */
  rules: RuleOutput[];
  /** The first rule's output (what /healthz shows). */
  rule: RuleOutput;
  /** Per-feature mean/std for z-scoring, or undefined for raw values. */
  normalisation: { mean: Float64Array; std: Float64Array } | undefined;
  /** What /healthz says about normalisation, e.g. `model metadata` or `none (model has no lineguard metadata)`. */
  normalisationNote: string;
  /** Feature names from the metadata, in input order (tag i feeds feature i). */
  featureNames: string[] | undefined;
}

/** The output element an alert rule reads. */
export interface RuleOutput {
  /** The rule's name (models[].alerts[].name). */
  rule: string;
  name: string;
  index: number | 'max';
  kind: string | undefined;
  labels: string[] | undefined;
}

/** The model does not fit the config; the message names what the model has and what the config expects. */
export class ModelMismatchError extends Error {
  override readonly name = 'ModelMismatchError';
}

export function formatShape(shape: ReadonlyArray<number | string>): string {
  return `[${shape.join(', ')}]`;
}

/** Checks the session's inputs and outputs against the config and the metadata. Throws ModelMismatchError. */
export function resolveModelIo(cfg: ModelConfig, file: ModelFile, load: LoadResult): ModelIo {
  const samples = cfg.window.samples;
  const features = cfg.inputs.length;
  const expected = `[batch, ${samples}, ${features}] (window.samples ${samples} × ${features} input tag${features === 1 ? '' : 's'})`;
  if (load.inputs.length !== 1) {
    throw new ModelMismatchError(
      `the model has ${load.inputs.length} inputs (${load.inputs.map((i) => i.name).join(', ')}); the config feeds exactly one float32 input ${expected}`,
    );
  }
  const input = load.inputs[0]!;
  const declared = formatShape(input.shape);
  if (input.type !== 'float32') {
    throw new ModelMismatchError(`model input "${input.name}" is ${input.type ?? 'not a tensor'} ${declared}; the config feeds float32 ${expected}`);
  }
  const fits = (dim: number | string | undefined, want: number): boolean => typeof dim === 'string' || dim === want;
  const [batch] = input.shape;
  let inputDims: number[];
  if (input.shape.length === 3 && fits(batch, 1) && fits(input.shape[1], samples) && fits(input.shape[2], features)) {
    inputDims = [1, samples, features];
  } else if (input.shape.length === 2 && samples === 1 && fits(batch, 1) && fits(input.shape[1], features)) {
    inputDims = [1, features];
  } else {
    throw new ModelMismatchError(`model input "${input.name}" has shape ${declared} but the config expects ${expected}`);
  }

  const meta = file.metadata;
  if (meta?.window !== undefined && meta.window !== samples) {
    throw new ModelMismatchError(`the model metadata says window ${meta.window} but the config has window.samples ${samples}`);
  }
  if (meta && meta.inputs.length !== features) {
    throw new ModelMismatchError(
      `the model metadata describes ${meta.inputs.length} input features (${meta.inputs.map((i) => i.name).join(', ')}) ` +
        `but the config lists ${features} input tag${features === 1 ? '' : 's'} (${cfg.inputs.join(', ')})`,
    );
  }

  const rules = modelRules(cfg).map((r, i) => resolveRuleOutput(r, cfg.alerts ? `alerts[${i}]` : 'alert', file, load.outputs));
  if (rules.length === 0) throw new ModelMismatchError('the model has no alert rule (alert or alerts)');
  const rule = rules[0]!;
  let normalisation: ModelIo['normalisation'];
  let normalisationNote: string;
  if (cfg.normalisation === 'none') {
    normalisationNote = 'none (config)';
  } else if (!meta) {
    normalisationNote = 'none (the model has no lineguard metadata)';
  } else {
    normalisation = { mean: Float64Array.from(meta.inputs, (i) => i.mean), std: Float64Array.from(meta.inputs, (i) => i.std) };
    normalisationNote = 'z-score with the model metadata mean/std';
  }
  return {
    inputName: input.name,
    inputDims,
    declaredInputShape: declared,
    outputs: load.outputs,
    rules,
    rule,
    normalisation,
    normalisationNote,
    featureNames: meta?.inputs.map((i) => i.name),
  };
}

function resolveRuleOutput(r: NamedRule, where: string, file: ModelFile, outputs: ValueInfo[]): RuleOutput {
  const names = outputs.map((o) => o.name);
  const name = r.output ?? names[0];
  const output = outputs.find((o) => o.name === name);
  if (!name || !output) {
    throw new ModelMismatchError(`${where}.output "${name ?? ''}" is not an output of the model (outputs: ${names.join(', ') || 'none'})`);
  }
  if (output.type === 'string' || output.type === undefined) {
    throw new ModelMismatchError(`output "${name}" is ${output.type ?? 'not a tensor'}; an alert rule needs a numeric output`);
  }
  const index = r.outputIndex;
  const last = output.shape[output.shape.length - 1];
  const width = output.shape.length >= 2 && typeof last === 'number' ? last : output.shape.length <= 1 ? 1 : undefined;
  if (typeof index === 'number' && width !== undefined && index >= width) {
    throw new ModelMismatchError(
      `${where}.outputIndex ${index} is outside output "${name}" ${formatShape(output.shape)} (${width} element${width === 1 ? '' : 's'} per inference)`,
    );
  }
  const described = file.metadata?.outputs.find((o) => o.name === name);
  return { rule: r.name, name, index, kind: described?.kind, labels: described?.labels };
}

/**
 * The value the rule reads from one inference (batch 1), with its label. NaN when the output is missing or smaller
 * than at warm-up (a model with dynamic output shapes), with `problem` saying which.
 */
export function ruleValue(rule: RuleOutput, outputs: OutputTensors): { value: number; index: number; label?: string; problem?: string } {
  const tensor = outputs[rule.name];
  if (!tensor || tensor.data.length === 0) {
    const problem = tensor ? `output "${rule.name}" came back empty ${formatShape(tensor.dims)}` : `the model returned no output "${rule.name}"`;
    return { value: Number.NaN, index: 0, problem };
  }
  let index = 0;
  if (rule.index === 'max') {
    for (let i = 1; i < tensor.data.length; i++) if (tensor.data[i]! > tensor.data[index]!) index = i;
  } else {
    index = rule.index;
  }
  if (index >= tensor.data.length) {
    return { value: Number.NaN, index, problem: `alert.outputIndex ${index} is outside output "${rule.name}" ${formatShape(tensor.dims)}` };
  }
  const value = tensor.data[index]!;
  const label = rule.labels?.[index];
  return label === undefined ? { value, index } : { value, index, label };
}

/** After the warm-up run: the rule's element must exist in the real output. Throws ModelMismatchError. */
export function checkWarmupOutputs(io: ModelIo, outputs: OutputTensors): void {
  for (const rule of io.rules) {
    const tensor = outputs[rule.name];
    if (!tensor) throw new ModelMismatchError(`the model did not return output "${rule.name}"`);
    if (typeof rule.index === 'number' && rule.index >= tensor.data.length) {
      throw new ModelMismatchError(
        `rule ${rule.rule}: outputIndex ${rule.index} is outside output "${rule.name}" (the model returned ${formatShape(tensor.dims)})`,
      );
    }
  }
}

/** Every output of one inference as the record keeps it: a number for a one-element output, else its elements. */
export function outputValues(outputs: OutputTensors): Record<string, number | number[]> {
  const out: Record<string, number | number[]> = {};
  for (const [name, tensor] of Object.entries(outputs)) {
    out[name] = tensor.data.length === 1 ? Number(tensor.data[0]) : Array.from(tensor.data, Number);
  }
  return out;
}
