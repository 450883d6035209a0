// Types for models/evaluate.mjs (plain JavaScript so that it runs with node alone).
import type { InferenceSession } from 'onnxruntime-node';

export declare const MODELS_DIR: string;
export declare const DATA_DIR: string;
export declare const AI4I_TEST_FIRST_UDI: number;
export declare const AI4I_MODES: string[];
export declare const CMAPSS_SENSORS: Record<string, number>;
export declare const RUL_CAP: number;
export declare const STEEL_CLASSES: string[];
export declare const CARD_BEGIN: string;
export declare const CARD_END: string;

export interface LineguardInput {
  name: string;
  unit: string;
  mean: number;
  std: number;
  description: string;
  /** Training statistics in raw units (extra fields beside mean/std). */
  min?: number;
  max?: number;
  quantiles?: Record<string, number>;
}

export interface LineguardOutput {
  name: string;
  kind: 'probability' | 'probabilities' | 'regression';
  labels?: string[];
  unit?: string;
  description?: string;
}

export type RecommendedAlert =
  | { output: string; raiseAbove: number; clearBelow: number }
  | { output: string; raiseBelow: number; clearAbove: number };

export interface LineguardMetadata {
  schema: number;
  name: string;
  version: string;
  task: 'classification' | 'regression';
  window: number;
  samplePeriod: string;
  inputs: LineguardInput[];
  outputs: LineguardOutput[];
  recommendedAlert: RecommendedAlert;
  /** Several rules (the steel-defect model: one per class). */
  recommendedAlerts?: Array<{ name: string; output: string; outputIndex: number; raiseAbove: number; clearBelow: number; kind: string; severity: string }>;
  samplePeriodMs?: number | null;
  sampleBasis?: string;
  inputOrder?: string;
  training: { data: string; license: string; metrics: Record<string, unknown> };
}

export interface OnnxModelInfo {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  modelVersion: number;
  docString: string;
  opsetImports: { domain: string; version: number }[];
  metadataProps: Record<string, string>;
}

export declare function readOnnxModelInfo(bytes: Uint8Array): OnnxModelInfo;
export declare function readLineguardMetadata(modelPath: string): LineguardMetadata;
export declare function normalise(meta: LineguardMetadata, rows: number[][]): Float32Array;
export declare function createSession(modelPath: string): Promise<InferenceSession>;
export declare function sha256(bytes: Uint8Array): string;
export declare function verifyChecksums(datasetDir: string): string[];

export interface Ai4iRow {
  udi: number;
  productId: string;
  raw: number[];
  machineFailure: number;
  TWF: number;
  HDF: number;
  PWF: number;
  OSF: number;
  RNF: number;
}
export declare function loadAi4i(dir?: string): Ai4iRow[];
export declare function loadCmapssTest(dir?: string): { unit: number; rows: number[][]; trueRul: number }[];
export declare function loadSteel(dir?: string): { row: number; features: Record<string, number>; label: number }[];
export declare function cmapssWindow(meta: LineguardMetadata, rows: number[][], window?: number): number[][];

export interface Counts {
  tp: number;
  fp: number;
  fn: number;
}
export declare function binaryCounts(y: number[], p: ArrayLike<number>, threshold: number): Counts;
export declare function precisionRecallF1(c: Counts): { precision: number; recall: number; f1: number };
export declare function averagePrecision(y: number[], p: number[]): number | null;
export declare function nasaScore(pred: number[], truth: number[]): number;
export declare function rmse(pred: number[], truth: number[]): number;

export interface ModeMetrics extends Counts {
  positives: number;
  precision: number;
  recall: number;
  f1: number;
  prAuc: number | null;
}
export interface Ai4iEvaluation extends Counts {
  model: string;
  version: string;
  split: string;
  testRows: number;
  testFailures: number;
  threshold: number;
  precision: number;
  recall: number;
  f1: number;
  prAuc: number;
  modes: Record<string, ModeMetrics>;
}
export interface CmapssEvaluation {
  model: string;
  version: string;
  protocol: string;
  testEngines: number;
  shortestTestEngine: number;
  rmse: number;
  nasaScore: number;
  mae: number;
  rmseUncapped: number;
  nasaScoreUncapped: number;
  alert: Counts & { condition: string; precision: number; recall: number };
  leadTimes: CmapssLeadTimes;
}
export interface CmapssLeadTimes {
  rule: { raiseBelow: number; clearAbove: number };
  enginesDue: number;
  warned: number;
  leadMin: number | null;
  leadMedian: number | null;
  leadMax: number | null;
  missed: { unit: number; trueRul: number }[];
  flappingEngines: number;
  earlyWarnings: number;
}
export interface SteelClassMetrics extends Counts {
  support: number;
  precision: number;
  recall: number;
  f1: number;
}
export interface SteelEvaluation {
  model: string;
  version: string;
  split: string;
  testRows: number;
  accuracy: number;
  macroF1: number;
  perClass: Record<string, SteelClassMetrics>;
  alerts: Record<string, Counts & { severity: string; raiseAbove: number; precision: number; recall: number }>;
}
export interface EvaluateOptions {
  modelPath?: string;
  session?: InferenceSession;
}
export declare function evaluateAi4i(options?: EvaluateOptions): Promise<Ai4iEvaluation>;
export declare function evaluateCmapss(options?: EvaluateOptions): Promise<CmapssEvaluation>;
export declare function cmapssLeadTimes(options?: EvaluateOptions): Promise<CmapssLeadTimes>;
export declare function evaluateSteel(options?: EvaluateOptions): Promise<SteelEvaluation>;

export interface Latency {
  batch: number;
  runs: number;
  medianUs: number;
  p99Us: number;
  threads: number;
  onnxruntime: string;
}
export declare function measureLatency(modelPath: string, runs?: number): Promise<Latency>;

export interface MetricsFile {
  evaluation: Ai4iEvaluation | CmapssEvaluation | SteelEvaluation;
  latency: Latency;
  modelSha256: string;
}
export declare function renderMetricsBlock(m: MetricsFile): string;
export declare function replaceMetricsBlock(readme: string, block: string): string;
export declare function extractMetricsBlock(readme: string): string | null;
export declare const SHIPPED: {
  'ai4i-fault': typeof evaluateAi4i;
  'cmapss-rul': typeof evaluateCmapss;
  'steel-defect': typeof evaluateSteel;
};
