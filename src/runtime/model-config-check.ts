import { readBoundedBytes } from '../core/bounded-file.js';
import { isAbsolute, resolve } from 'node:path';
import type { ConfigIssueReporter } from '../core/config-types.js';
import { modelRules, type ModelConfig } from './config.js';
import type { LineguardMetadata } from './lineguard-metadata.js';
import { parseModelBytes, type ModelFile } from './model-file.js';
import type { GraphValue } from './onnx-model-proto.js';

/** A model file bigger than this is not read by check-config (the runtime still loads it). */
const MAX_CHECKED_BYTES = 2 * 1024 * 1024 * 1024 - 1;

/**
 * check-config's look at each model file, without ONNX Runtime (the ONNX header and graph signature are read
 * directly): what would otherwise only show when the gateway runs — and then as a model that is down. Errors: the
 * input's rank and dimensions against window.samples × inputs, its element type, output names and indexes the
 * rules use, metadata that disagrees with the config. Warnings: a missing file (it may be dropped in later: the
 * model comes up when it appears), normalisation asked for without metadata, input tags in another order than the
 * model's metadata names them. Paths are relative to `models`.
 */
export function checkModelFiles(models: readonly ModelConfig[], baseDir: string, report: ConfigIssueReporter, warn: ConfigIssueReporter): void {
  models.forEach((model, i) => {
    const path = isAbsolute(model.file) ? model.file : resolve(baseDir, model.file);
    const at = (p: Array<string | number>, m: string): void => report([i, ...p], m);
    const note = (p: Array<string | number>, m: string): void => warn([i, ...p], m);
    let file: ModelFile;
    try {
      const read = readBoundedBytes(path, MAX_CHECKED_BYTES);
      if (!read.ok && read.missing) {
        note(['file'], `${path} does not exist (yet): the model is down until the file appears, then it is loaded without a restart`);
        return;
      }
      if (!read.ok) {
        at(['file'], `${path} cannot be used: ${read.why}`);
        return;
      }
      const bytes = read.bytes;
      // The same parse the runtime does before loading (ONNX header, graph signature, Lineguard metadata).
      file = parseModelBytes(path, bytes);
    } catch (err) {
      at(['file'], `${path} cannot be used: ${(err as Error).message.replace(`${path}: `, '').replace(`${path} `, '')}`);
      return;
    }
    const { header, metadata: meta } = file;
    checkInput(model, header.inputs, at);
    checkOutputs(model, header.outputs, at);
    if (meta) checkMetadata(model, meta, at, note);
    else if (model.normalisation === 'model') {
      note(['normalisation'], `${path} has no Lineguard metadata: the model gets raw values (set normalisation: none to say that is intended)`);
    }
  });
}

function shapeText(shape: GraphValue['shape']): string {
  return shape ? `[${shape.join(', ')}]` : '(no shape)';
}

function checkInput(model: ModelConfig, inputs: GraphValue[], at: (p: Array<string | number>, m: string) => void): void {
  const samples = model.window.samples;
  const features = model.inputs.length;
  const expected = `[batch, ${samples}, ${features}] (window.samples ${samples} × ${features} input tag${features === 1 ? '' : 's'})`;
  if (inputs.length !== 1) {
    at(['file'], `the model has ${inputs.length} inputs (${inputs.map((x) => x.name).join(', ')}); the gateway feeds exactly one float input ${expected}`);
    return;
  }
  const input = inputs[0]!;
  if (input.type !== 'float') at(['file'], `model input "${input.name}" is ${input.type}; the gateway feeds float32 ${expected}`);
  const shape = input.shape;
  if (!shape) return;
  const fixed = (d: number | string | undefined): d is number => typeof d === 'number' && d > 0;
  if (shape.length === 3) {
    if (fixed(shape[1]) && shape[1] !== samples) {
      at(['window', 'samples'], `the model takes a window of ${shape[1]} (input "${input.name}" ${shapeText(shape)}), the config gives ${samples}`);
    }
    if (fixed(shape[2]) && shape[2] !== features) {
      at(['inputs'], `the model takes ${shape[2]} features (input "${input.name}" ${shapeText(shape)}), the config lists ${features} input tags`);
    }
  } else if (shape.length === 2) {
    if (samples !== 1) at(['window', 'samples'], `the model input "${input.name}" ${shapeText(shape)} has no window dimension: window.samples must be 1, not ${samples}`);
    if (fixed(shape[1]) && shape[1] !== features) {
      at(['inputs'], `the model takes ${shape[1]} features (input "${input.name}" ${shapeText(shape)}), the config lists ${features} input tags`);
    }
  } else {
    at(['file'], `model input "${input.name}" has rank ${shape.length} ${shapeText(shape)}; the gateway feeds ${expected}`);
  }
}

function checkOutputs(model: ModelConfig, outputs: GraphValue[], at: (p: Array<string | number>, m: string) => void): void {
  const names = outputs.map((o) => o.name);
  modelRules(model).forEach((rule, r) => {
    const where = model.alerts ? ['alerts', r] : ['alert'];
    const name = rule.output ?? names[0];
    const output = outputs.find((o) => o.name === name);
    if (!output) {
      at([...where, ...(rule.output !== undefined ? ['output'] : [])], `"${name ?? ''}" is not an output of the model (outputs: ${names.join(', ') || 'none'})`);
      return;
    }
    if (output.type === 'string') at([...where, 'output'], `output "${name}" is a string tensor; a rule needs a number`);
    const shape = output.shape;
    const last = shape && shape.length >= 2 ? shape[shape.length - 1] : shape && shape.length <= 1 ? 1 : undefined;
    if (typeof rule.outputIndex === 'number' && typeof last === 'number' && rule.outputIndex >= last) {
      at([...where, 'outputIndex'], `${rule.outputIndex} is outside output "${name}" ${shapeText(shape)} (${last} element${last === 1 ? '' : 's'})`);
    }
  });
}

function checkMetadata(
  model: ModelConfig, meta: LineguardMetadata,
  at: (p: Array<string | number>, m: string) => void, note: (p: Array<string | number>, m: string) => void,
): void {
  if (meta.window !== undefined && meta.window !== model.window.samples) {
    at(['window', 'samples'], `the model's metadata says it was trained on windows of ${meta.window}, the config gives ${model.window.samples}`);
  }
  if (meta.inputs.length !== model.inputs.length) {
    at(['inputs'], `the model's metadata names ${meta.inputs.length} input features (${meta.inputs.map((x) => x.name).join(', ')}), the config lists ${model.inputs.length}`);
    return;
  }
  // Feature names are short (torque); tags are qualified (press1.torque): a tag matches a feature that its name ends with.
  const matches = (tag: string, feature: string): boolean => tag === feature || tag.endsWith(`.${feature}`) || tag.endsWith(`_${feature}`);
  const position = model.inputs.map((tag) => meta.inputs.findIndex((f) => matches(tag, f.name)));
  if (position.every((p) => p >= 0) && position.some((p, t) => p !== t)) {
    const moved = model.inputs.map((tag, t) => ({ tag, t, p: position[t]! })).filter((x) => x.p !== x.t).slice(0, 3);
    note(['inputs'], `the tags are in another order than the model's features (${meta.inputs.map((f) => f.name).join(', ')}): ` +
      moved.map((x) => `${x.tag} is input ${x.t} but feature ${x.p}`).join('; '));
  }
  const period = (meta as { samplePeriodMs?: unknown }).samplePeriodMs;
  if (typeof period === 'number' && model.window.samples > 1 && model.window.periodMs !== undefined && model.window.periodMs !== period) {
    note(['window', 'periodMs'], `the model's metadata says it was trained on frames ${period} ms apart, the config has ${model.window.periodMs}`);
  }
}
