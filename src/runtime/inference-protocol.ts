import type { ExecutionProvider } from './config.js';
import type { ProviderNodeCounts } from './provider-profile.js';

/**
 * Messages between a ModelRunner (main thread) and its inference worker thread. One worker holds one session; a
 * hot swap starts a second worker beside the first.
 */

/** How the worker creates the session. */
export interface SessionRequest {
  /** Tried one at a time, in order. */
  providers: ExecutionProvider[];
  deviceId: number;
  intraOpThreads: number;
  /** Directory for the warm-up profiling file (deleted after reading). */
  profileDir: string;
  /**
   * The TensorRT engine cache (an EP-context model file, see tensorrt-engine-cache.ts): `reuse` loads the file
   * instead of the model for the tensorrt provider; `build` asks ONNX Runtime to write it. Other providers ignore it.
   */
  tensorrtCache?: { mode: 'reuse' | 'build'; contextModel: string };
}

/**
 * What the tensorrt session did with `tensorrtCache`: `reused` the cached engine, `built` it from the model (asking for
 * the context model), or `rebuilt` it because the cached one did not load (`error` says why).
 */
export interface EngineCacheOutcome {
  state: 'reused' | 'built' | 'rebuilt';
  error?: string;
}

/** One provider the worker tried and could not create a session with. */
export interface ProviderAttempt {
  provider: ExecutionProvider;
  error: string;
}

/** Name, element type and shape of a model input or output, as the session reports them. */
export interface ValueInfo {
  name: string;
  /** `float32`, `float64`, `int64`... undefined for a non-tensor value. */
  type?: string;
  /** Numbers for fixed dimensions, names for symbolic ones (`batch`). */
  shape: Array<number | string>;
}

/** An output tensor, converted to float64 so bigint and float16 outputs read the same way. */
export interface OutputTensor {
  type: string;
  dims: number[];
  data: Float64Array;
}

export type OutputTensors = Record<string, OutputTensor>;

export interface LoadResult {
  /** The provider the session was created with; null when none could create one (then `failed` says why). */
  provider: ExecutionProvider | null;
  /** Providers tried before `provider` that failed (the fallback chain). */
  failed: ProviderAttempt[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  createMs: number;
  /** Set when the session runs on tensorrt with an engine cache requested. */
  engineCache?: EngineCacheOutcome;
}

export interface WarmupResult {
  /** Kernel events per ONNX Runtime provider in the profiled first run. */
  nodeCounts: ProviderNodeCounts;
  /** Why the profile could not be read, if it could not. */
  profileError?: string;
  /** Duration of each warm-up run, ms (the first includes lazy initialisation, e.g. a TensorRT engine build). */
  runMs: number[];
  outputs: OutputTensors;
}

export interface RunResult {
  outputs: OutputTensors;
  /** session.run time inside the worker, ms. */
  runMs: number;
}

export type WorkerRequest =
  | { id: number; type: 'load'; bytes: Uint8Array; session: SessionRequest }
  | { id: number; type: 'warmup'; input: Float32Array; dims: number[]; runs: number }
  | { id: number; type: 'run'; input: Float32Array; dims: number[] }
  | { id: number; type: 'dispose' };

export type WorkerResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** workerData of an inference worker. */
export interface WorkerInit {
  /** ONNX Runtime's process-wide log level (its default `warning` writes to stderr). */
  ortLogLevel: 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
}
