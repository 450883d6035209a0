import { readModelFile } from '../runtime/model-file.js';

/** What the demo needs of a shipped model's `lineguard` metadata (see models/README.md). */
export interface DemoModelShape {
  window: number;
  inputs: Array<{ name: string; description?: string }>;
  /** The thresholds the model card recommends (`recommendedAlert` in the metadata). */
  recommendedAlert: { raiseAbove?: number; clearBelow?: number; raiseBelow?: number; clearAbove?: number };
  /** A card's several rules (`recommendedAlerts`, e.g. one per defect class), when it has them. */
  recommendedAlerts: Array<Record<string, unknown>>;
}

/** Reads a model's input list and window from its ONNX metadata, so the demo config follows the shipped model. */
export async function readLineguardMetadata(file: string): Promise<DemoModelShape> {
  const model = await readModelFile(file);
  if (!model.metadata) throw new Error(`${file} has no "lineguard" metadata; the demo needs the shipped models`);
  const recommended = (model.metadata.recommendedAlert ?? {}) as DemoModelShape['recommendedAlert'];
  const several = (model.metadata as { recommendedAlerts?: unknown }).recommendedAlerts;
  return {
    window: model.metadata.window ?? 1,
    inputs: model.metadata.inputs,
    recommendedAlert: recommended,
    recommendedAlerts: Array.isArray(several) ? (several as Array<Record<string, unknown>>) : [],
  };
}
