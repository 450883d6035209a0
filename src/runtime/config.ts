import { Type, type Static } from '@sinclair/typebox';
import { Name, Section } from '../core/config-types.js';

export const ExecutionProviderSchema = Type.Union([Type.Literal('tensorrt'), Type.Literal('cuda'), Type.Literal('cpu')]);

/** When an alert is raised and cleared. */
export const AlertRuleSchema = Section({
  kind: Type.String({ description: 'Alert kind: equipment_fault, quality_defect, degradation, ...', minLength: 1, default: 'equipment_fault' }),
  severity: Type.Union(
    [Type.Literal('critical'), Type.Literal('major'), Type.Literal('minor'), Type.Literal('warning'), Type.Literal('info')],
    { default: 'major' },
  ),
  output: Type.Optional(Type.String({ description: 'Model output the rule reads (default: the first output).' })),
  outputIndex: Type.Integer({ description: 'Element of that output (class index for probabilities).', minimum: 0, default: 0 }),
  raiseAbove: Type.Optional(Type.Number({ description: 'Raise when the value is above this... (for a value that rises).' })),
  clearBelow: Type.Optional(Type.Number({ description: '...and clear when it falls below this (hysteresis).' })),
  raiseBelow: Type.Optional(Type.Number({ description: 'Raise when the value is below this (for a value that falls, e.g. RUL).' })),
  clearAbove: Type.Optional(Type.Number({ description: '...and clear when it rises above this.' })),
  forSamples: Type.Integer({ description: 'Debounce: this many consecutive inferences past the threshold.', minimum: 1, default: 1 }),
  forMs: Type.Integer({ description: 'Debounce: past the threshold for at least this long.', minimum: 0, default: 0 }),
  cooldownMs: Type.Integer({ description: 'After a clear, no new raise for this long.', minimum: 0, default: 0 }),
});

/** One ONNX model run by the gateway. */
export const ModelConfigSchema = Section({
  name: Name({ description: 'Model name in alerts, logs, metrics and /healthz.' }),
  file: Type.String({ description: 'ONNX file. Relative paths are resolved from the config file directory.', minLength: 1 }),
  asset: Type.Optional(Type.String({ description: 'Asset or line this model watches (put in every alert).' })),
  executionProviders: Type.Array(ExecutionProviderSchema, {
    description: 'Tried in this order; the first that loads is used (and reported).', minItems: 1, default: ['cpu'],
  }),
  requireGpu: Type.Boolean({ description: 'true: fail this model instead of falling back to CPU.', default: false }),
  deviceId: Type.Integer({ description: 'CUDA/TensorRT device id.', minimum: 0, default: 0 }),
  tensorrt: Section(
    {
      fp16: Type.Boolean({ description: 'Allow FP16 kernels.', default: true }),
      engineCache: Type.Boolean({ description: 'Cache built engines under stateDir/trt-cache (minutes saved on every start).', default: true }),
    },
    { description: 'TensorRT options (set through ORT_TENSORRT_* variables).', default: {} },
  ),
  intraOpThreads: Type.Integer({ description: 'ONNX Runtime threads for this model.', minimum: 1, maximum: 64, default: 1 }),
  inputs: Type.Array(Type.String({ minLength: 1 }), { description: 'Tags fed to the model, in the order of its input features.', minItems: 1 }),
  window: Section(
    {
      samples: Type.Integer({ description: 'Rows per window (the model input window dimension).', minimum: 1, default: 1 }),
      periodMs: Type.Optional(Type.Integer({
        description: 'Resample onto a grid of this period (last value held); omitted = the last N samples as they came.', minimum: 1,
      })),
      maxInvalidFraction: Type.Number({
        description: 'Skip the inference when more than this fraction of the window is missing or bad quality.', minimum: 0, maximum: 1, default: 0,
      }),
    },
    { description: 'What history each inference sees.', default: {} },
  ),
  normalisation: Type.Union([Type.Literal('model'), Type.Literal('none')], {
    description: 'model: apply the mean/std stored in the ONNX metadata; none: feed raw values.', default: 'model',
  }),
  schedule: Section(
    {
      everyMs: Type.Integer({ description: 'Run at least this often.', minimum: 10, default: 1000 }),
      onNewData: Type.Boolean({ description: 'Also run when a new sample of every input has arrived.', default: false }),
    },
    { description: 'When inferences run (at most one in flight per model).', default: {} },
  ),
  alert: AlertRuleSchema,
});

export const ModelsConfigSchema = Type.Array(ModelConfigSchema, { description: 'ONNX models and their alert rules.', default: [] });

export type ExecutionProvider = Static<typeof ExecutionProviderSchema>;
export type AlertRuleConfig = Static<typeof AlertRuleSchema>;
export type ModelConfig = Static<typeof ModelConfigSchema>;
