/**
 * The model runtime: ONNX sessions on the best execution provider available, feature windows from the buffer,
 * inference scheduling, alert rules, hot swap. The daemon creates one ModelRunner per configured model.
 */
export { ModelRunner, type ModelRunnerDeps, type InferenceRecord } from './model-runner.js';
export { modelCommand } from './model-command.js';
export {
  checkModelsConfig, ModelsConfigSchema, ModelConfigSchema, AlertRuleSchema, ExecutionProviderSchema,
  type ModelConfig, type AlertRuleConfig, type ExecutionProvider,
} from './config.js';
