import { Type, type Static } from '@sinclair/typebox';
import { MAX_CONFIG_NUMBER, MAX_TIMER_MS, Name, Section, type ConfigIssueReporter } from '../core/config-types.js';

export const ExecutionProviderSchema = Type.Union([Type.Literal('tensorrt'), Type.Literal('cuda'), Type.Literal('cpu')], {
  description: 'An ONNX Runtime execution provider: tensorrt (NVIDIA TensorRT), cuda (NVIDIA CUDA) or cpu.',
});

/**
 * When an alert is raised and cleared. A rule reads one number from one model output and applies a threshold with
 * hysteresis: `raiseAbove` + `clearBelow` for a value that rises towards trouble (a failure probability), or
 * `raiseBelow` + `clearAbove` for a value that falls towards it (remaining useful life).
 */
export const AlertRuleSchema = Section(
  {
    name: Type.Optional(Name({
      description: 'Name of this rule in alerts, logs and the rule state (default: the output it reads, or "alert" for the one-rule `alert:`).',
    })),
    kind: Type.String({
      description: 'Alert kind in the payload: equipment_fault, quality_defect, degradation, ...', minLength: 1, default: 'equipment_fault',
    }),
    severity: Type.Union(
      [Type.Literal('critical'), Type.Literal('major'), Type.Literal('minor'), Type.Literal('warning'), Type.Literal('info')],
      { description: 'Severity in the payload.', default: 'major' },
    ),
    output: Type.Optional(Type.String({ description: 'Model output the rule reads (default: the first output).', minLength: 1 })),
    outputIndex: Type.Union([Type.Integer({ minimum: 0, maximum: 16_777_215 }), Type.Literal('max')], {
      description:
        'Element of that output: a class index for probabilities, or "max" for the largest element (its label is put in the alert).',
      default: 0,
    }),
    raiseAbove: Type.Optional(Type.Number({ description: 'Raise when the value is above this (for a value that rises); needs clearBelow.', minimum: -MAX_CONFIG_NUMBER, maximum: MAX_CONFIG_NUMBER })),
    clearBelow: Type.Optional(Type.Number({ description: 'Clear when the value is below this (hysteresis: at most raiseAbove).', minimum: -MAX_CONFIG_NUMBER, maximum: MAX_CONFIG_NUMBER })),
    raiseBelow: Type.Optional(Type.Number({ description: 'Raise when the value is below this (for a value that falls, e.g. RUL); needs clearAbove.', minimum: -MAX_CONFIG_NUMBER, maximum: MAX_CONFIG_NUMBER })),
    clearAbove: Type.Optional(Type.Number({ description: 'Clear when the value is above this (hysteresis: at least raiseBelow).', minimum: -MAX_CONFIG_NUMBER, maximum: MAX_CONFIG_NUMBER })),
    forSamples: Type.Integer({
      description:
        'Debounce: this many consecutive windows past the threshold before raising (and past the clear threshold before clearing). ' +
        'One window is one frame of source time (window.periodMs) or one new sample time (without periodMs).',
      minimum: 1, maximum: 1_000_000, default: 1,
    }),
    forMs: Type.Integer({
      description: 'Debounce: past the threshold for at least this long (sample time) before raising or clearing; both debounces must hold.',
      minimum: 0, maximum: MAX_TIMER_MS, default: 0,
    }),
    cooldownMs: Type.Integer({ description: 'After a clear, no new raise for this long (sample time).', minimum: 0, maximum: MAX_TIMER_MS, default: 0 }),
    recentSamples: Type.Integer({
      description: 'How many of the newest window rows of each input tag the alert carries (what the engineer sees).',
      minimum: 0, maximum: 1000, default: 10,
    }),
  },
  { description: 'An alert rule applied to one model output.' },
);

/** The alert a model raises when it cannot infer (silence is not health). */
export const UnavailableAlertSchema = Section(
  {
    enabled: Type.Boolean({ description: 'Raise a model_unavailable alert when this model cannot infer for afterMs.', default: true }),
    afterMs: Type.Integer({
      description:
        'How long the model may go without evaluating a window (stale or missing inputs, non-finite outputs, a crashed worker, ' +
        'a lost provider, a clock step) before model_unavailable is raised. It is cleared at the next evaluated window.',
      minimum: 1000, maximum: MAX_TIMER_MS, default: 60000,
    }),
    severity: Type.Union(
      [Type.Literal('critical'), Type.Literal('major'), Type.Literal('minor'), Type.Literal('warning'), Type.Literal('info')],
      { description: 'Severity of the model_unavailable alert.', default: 'major' },
    ),
  },
  { description: 'The model_unavailable alert (docs/alert-payload.md).', default: {} },
);

/** One ONNX model run by the gateway. */
export const ModelConfigSchema = Section({
  name: Name({ description: 'Model name in alerts, logs, metrics and /healthz.', examples: ['press1-fault'] }),
  file: Type.String({
    description: 'ONNX file. Relative paths are resolved from the config file directory. Replacing the file swaps the model live.',
    minLength: 1, examples: ['models/ai4i-fault/model.onnx'],
  }),
  asset: Type.Optional(Type.String({ description: 'Asset or line this model watches (put in every alert).', minLength: 1 })),
  executionProviders: Type.Array(ExecutionProviderSchema, {
    description: 'Tried one at a time in this order; the first that loads is used, and the one that really ran is reported.',
    minItems: 1, maxItems: 3, default: ['cpu'],
  }),
  requireGpu: Type.Boolean({
    description: 'true: the model is down (with the reason) instead of falling back to the CPU when no GPU provider loads.', default: false,
  }),
  deviceId: Type.Integer({ description: 'CUDA/TensorRT device id.', minimum: 0, maximum: 255, default: 0 }),
  tensorrt: Section(
    {
      fp16: Type.Boolean({
        description:
          'Ask for FP16 TensorRT kernels. Set it only when the model card says the model was validated at FP16 (the alert ' +
          'thresholds were calibrated on its numerics). onnxruntime-node 1.30 passes only deviceId to TensorRT, so today the ' +
          'engine runs at FP32 either way and a true value is logged as not applied; it is part of the engine cache key.',
        default: false,
      }),
      engineCache: Type.Boolean({
        description:
          'Keep the built TensorRT engine as an ONNX Runtime EP-context model under <stateDir>/trt-cache/<name>/<model hash>/ ' +
          '(session entries ep.context_*) and load it on later starts; rebuilt when the model file, onnxruntime, TensorRT, ' +
          'fp16 or deviceId change. Not verified on a GPU: the log says when ONNX Runtime wrote no context model.',
        default: true,
      }),
    },
    { description: 'TensorRT options. Only deviceId and the engine cache reach ONNX Runtime from onnxruntime-node 1.30 (docs/jetson.md).', default: {} },
  ),
  intraOpThreads: Type.Integer({
    description: 'ONNX Runtime intra-op threads for this model (ONNX Runtime would take one per core; Lineguard also turns their busy-waiting off).', minimum: 1, maximum: 64, default: 1,
  }),
  inputs: Type.Array(Type.String({ minLength: 1 }), {
    description: 'Tags fed to the model, in the order of its input features.', minItems: 1,
  }),
  window: Section(
    {
      samples: Type.Integer({ description: 'Rows per window (the model input window dimension).', minimum: 1, maximum: 100000, default: 1 }),
      periodMs: Type.Optional(Type.Integer({
        description:
          'Frames on a grid of this period of source time (each tag\'s last value at or before the frame time); use it for ' +
          'OPC UA tags, which report on change. Omitted: one frame per distinct sample time of the input tags (rows of MQTT ' +
          'JSON messages or Sparkplug DATA), each tag\'s last value held.',
        minimum: 1, maximum: 86_400_000,
      })),
      maxHoldMs: Type.Optional(Type.Integer({
        description:
          'A tag\'s last value is held (sources report on change) for at most this long, then its cells count as missing. ' +
          'Default: 3,600 × the tag\'s sampling interval, between 1 min and 24 h (1 h for MQTT tags). A source that loses its ' +
          'connection marks its tags bad at once, whatever the hold.',
        minimum: 1, maximum: MAX_TIMER_MS,
      })),
      latenessMs: Type.Integer({
        description:
          'Allowed lateness: a frame at source time t is assembled once the sources have reached t + latenessMs (their samples ' +
          'arrive a publishing interval or so after the PLC stamped them). Frames whose every tag has already reported past t ' +
          'do not wait.',
        minimum: 0, maximum: 3_600_000, default: 2000,
      }),
      maxInvalidFraction: Type.Number({
        description:
          'Skip the inference when more than this fraction of the window cells is missing or bad quality; the cells that are allowed ' +
          'to be missing are filled with the previous good value of the same tag (the next one at the start of the window).',
        minimum: 0, maximum: 1, default: 0,
      }),
    },
    { description: 'What history each inference sees.', default: {} },
  ),
  normalisation: Type.Union([Type.Literal('model'), Type.Literal('none')], {
    description:
      'model: z-score each feature with the mean/std in the ONNX metadata (a model without that metadata gets raw values, with a warning); ' +
      'none: feed raw values.',
    default: 'model',
  }),
  schedule: Section(
    {
      everyMs: Type.Integer({ description: 'Run at least this often.', minimum: 10, maximum: 86_400_000, default: 1000 }),
      onNewData: Type.Boolean({ description: 'Also run as soon as a new sample of every input tag has arrived.', default: false }),
      timeoutMs: Type.Integer({
        description: 'An inference running longer than this is abandoned and the model reloaded (a hung GPU must not stop the model for good).',
        minimum: 100, maximum: 3_600_000, default: 30000,
      }),
    },
    { description: 'When inferences run (at most one in flight per model).', default: {} },
  ),
  watch: Type.Boolean({
    description: 'Reload the model when its file changes (loaded and warmed up beside the running one, then swapped).', default: true,
  }),
  shadow: Type.Optional(Section(
    {
      file: Type.String({
        description: 'ONNX file of the candidate. Relative paths are resolved from the config file directory.', minLength: 1,
        examples: ['models/ai4i-fault/model-v2.onnx'],
      }),
    },
    {
      description:
        'A candidate model run on the same windows as this one, with the same inputs and rules: its outputs are recorded as model ' +
        '<name>#shadow (lineguard outputs), its agreement with the live model is exported (lineguard_shadow_*), and it never ' +
        'raises an alert. Promote it by pointing file at it.',
    },
  )),
  alert: Type.Optional(AlertRuleSchema),
  alerts: Type.Optional(Type.Array(AlertRuleSchema, {
    description: 'Several rules evaluated on each inference (one per output, or several thresholds on one); `alert:` is the one-rule shorthand.',
    minItems: 1, maxItems: 64,
  })),
  unavailable: UnavailableAlertSchema,
});

export const ModelsConfigSchema = Type.Array(ModelConfigSchema, { description: 'ONNX models and their alert rules.', default: [] });

export type ExecutionProvider = Static<typeof ExecutionProviderSchema>;
export type AlertRuleConfig = Static<typeof AlertRuleSchema>;
export type ModelConfig = Static<typeof ModelConfigSchema>;

/** A rule with its name resolved: what the runtime evaluates. */
export type NamedRule = AlertRuleConfig & { name: string };

/** The rules of a model: `alerts:` or the one `alert:`, each with its name (checked unique by checkModelsConfig). */
export function modelRules(model: Pick<ModelConfig, 'alert' | 'alerts'>): NamedRule[] {
  if (model.alerts) return model.alerts.map((r, i) => ({ ...r, name: r.name ?? r.output ?? `rule${i}` }));
  if (model.alert) return [{ ...model.alert, name: model.alert.name ?? 'alert' }];
  return [];
}

/**
 * Cross-field checks of `models:` that JSON Schema cannot express. `report` paths are relative to `models`
 * (the loader adds the prefix).
 */
export function checkModelsConfig(models: readonly ModelConfig[], report: ConfigIssueReporter): void {
  const names = new Map<string, number>();
  models.forEach((model, i) => {
    const previous = names.get(model.name);
    if (previous !== undefined) report([i, 'name'], `model name "${model.name}" is already used by models[${previous}]`);
    else names.set(model.name, i);
    checkProviders(model, (p, m) => report([i, ...p], m));
    checkInputs(model, (p, m) => report([i, ...p], m));
    if (model.alert && model.alerts) report([i, 'alerts'], 'use either alert (one rule) or alerts (a list of rules), not both');
    else if (!model.alert && !model.alerts) report([i], 'a model needs an alert rule: add alert (one rule) or alerts (a list)');
    if (model.alert) checkRule(model.alert, (p, m) => report([i, 'alert', ...p], m));
    const ruleNames = new Map<string, number>();
    (model.alerts ?? []).forEach((rule, r) => {
      checkRule(rule, (p, m) => report([i, 'alerts', r, ...p], m));
      const name = rule.name ?? rule.output ?? `rule${r}`;
      const previous = ruleNames.get(name);
      if (previous !== undefined) {
        report([i, 'alerts', r, ...(rule.name ? ['name'] : [])], `rule name "${name}" is already used by alerts[${previous}]: give each rule a distinct name`);
      } else ruleNames.set(name, r);
    });
  });
}

function checkProviders(model: ModelConfig, report: ConfigIssueReporter): void {
  const seen = new Set<string>();
  model.executionProviders.forEach((provider, p) => {
    if (seen.has(provider)) report(['executionProviders', p], `execution provider "${provider}" is listed twice`);
    seen.add(provider);
  });
  if (model.requireGpu) {
    if (!seen.has('tensorrt') && !seen.has('cuda')) {
      report(['requireGpu'], 'requireGpu needs a GPU provider: add "tensorrt" or "cuda" to executionProviders');
    }
    if (seen.has('cpu')) {
      report(['executionProviders'], 'requireGpu forbids the CPU fallback: remove "cpu" from executionProviders (or set requireGpu: false)');
    }
  }
}

function checkInputs(model: ModelConfig, report: ConfigIssueReporter): void {
  const seen = new Map<string, number>();
  model.inputs.forEach((tag, t) => {
    const previous = seen.get(tag);
    if (previous !== undefined) report(['inputs', t], `tag "${tag}" is already input ${previous} of this model`);
    else seen.set(tag, t);
  });

}

function checkRule(rule: AlertRuleConfig, report: ConfigIssueReporter): void {
  const rising = rule.raiseAbove !== undefined || rule.clearBelow !== undefined;
  const falling = rule.raiseBelow !== undefined || rule.clearAbove !== undefined;
  if (rising && falling) {
    report([], 'use either raiseAbove/clearBelow (a value that rises) or raiseBelow/clearAbove (a value that falls), not both');
    return;
  }
  if (!rising && !falling) {
    report([], 'set a threshold: raiseAbove with clearBelow, or raiseBelow with clearAbove');
    return;
  }
  if (rising) {
    if (rule.raiseAbove === undefined) report(['clearBelow'], 'clearBelow needs raiseAbove');
    else if (rule.clearBelow === undefined) {
      report(['raiseAbove'], `raiseAbove needs clearBelow (hysteresis; clearBelow: ${rule.raiseAbove} clears as soon as the value is back below)`);
    } else if (rule.clearBelow > rule.raiseAbove) {
      report(['clearBelow'], `clearBelow (${rule.clearBelow}) must not be above raiseAbove (${rule.raiseAbove})`);
    }
  } else {
    if (rule.raiseBelow === undefined) report(['clearAbove'], 'clearAbove needs raiseBelow');
    else if (rule.clearAbove === undefined) {
      report(['raiseBelow'], `raiseBelow needs clearAbove (hysteresis; clearAbove: ${rule.raiseBelow} clears as soon as the value is back above)`);
    } else if (rule.clearAbove < rule.raiseBelow) {
      report(['clearAbove'], `clearAbove (${rule.clearAbove}) must not be below raiseBelow (${rule.raiseBelow})`);
    }
  }
}
