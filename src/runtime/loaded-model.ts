import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ExecutionProvider, ModelConfig } from './config.js';
import type { OutputTensors, ProviderAttempt, RunResult } from './inference-protocol.js';
import { InferenceWorker } from './inference-worker-client.js';
import type { ModelFile } from './model-file.js';
import { checkWarmupOutputs, resolveModelIo, type ModelIo } from './model-io.js';
import { providerUsed, type ProviderNodeCounts } from './provider-profile.js';
import { prepareEngineCache, settleEngineCache } from './tensorrt-engine-cache.js';

/** Warm-up runs before a model goes live (the first builds lazy state: allocations, a TensorRT engine). */
const WARMUP_RUNS = 3;

/**
 * Why a model could not be loaded. `invalid`: ONNX Runtime refuses the file even on the CPU; `mismatch`: the model
 * does not fit its config; `nonfinite`: a warm-up inference returned NaN or ±Infinity (a broken export, or a model
 * that cannot take inputs in its own normal range); `provider`: no acceptable execution provider loads here (a GPU
 * that is not there yet); `worker`: the worker thread could not run. Only `provider` and `worker` can pass without
 * a new file.
 */
export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
  constructor(readonly code: 'invalid' | 'mismatch' | 'nonfinite' | 'provider' | 'worker', message: string) {
    super(message);
  }

  /** Whether trying again with the same file may succeed. */
  get transient(): boolean {
    return this.code === 'provider' || this.code === 'worker';
  }
}

export interface LoadOptions {
  stateDir: string;
  log: Logger;
  /** Called when the worker thread dies on its own (crash), not when it is terminated. */
  onWorkerExit: (err: Error) => void;
  /** Aborting ends a load in progress (the component is stopping). */
  signal?: AbortSignal;
}

/**
 * A model that is loaded, checked against its config and warmed up in its own worker thread: ready to serve.
 * Created only by `loadModel`, so a LoadedModel is never half-loaded.
 */
export class LoadedModel {
  #inFlight: Promise<unknown> | undefined;

  private constructor(
    readonly file: ModelFile,
    readonly io: ModelIo,
    /** The provider that really ran the warm-up (from the profile). */
    readonly provider: string,
    readonly providerNodes: ProviderNodeCounts,
    /** Providers tried first that failed to load. */
    readonly fallbacks: ProviderAttempt[],
    readonly loadMs: number,
    readonly warmupMs: number[],
    private readonly worker: InferenceWorker,
  ) {}

  /** Runs one inference. `input` is moved to the worker thread. */
  infer(input: Float32Array): Promise<RunResult> {
    const run = this.worker.run(input, this.io.inputDims);
    this.#inFlight = run.catch(() => undefined);
    return run;
  }

  get alive(): boolean {
    return this.worker.alive;
  }

  /** Resolves once the model's thread has ended: after `dispose`, or later when it was stuck in a native call. */
  get ended(): Promise<void> {
    return this.worker.ended;
  }

  /** Waits (at most `timeoutMs`) for the inference in flight, then ends the worker thread. */
  async dispose(timeoutMs = 2000): Promise<void> {
    const inFlight = this.#inFlight;
    if (inFlight) await Promise.race([inFlight, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await this.worker.terminate(timeoutMs);
  }

  /**
   * Loads `file` for `cfg` in a new worker thread: session on the first provider that loads, input/output check,
   * warm-up with a profiled first run to confirm the provider. Throws ModelLoadError; the worker is gone then.
   */
  static async load(cfg: ModelConfig, file: ModelFile, options: LoadOptions): Promise<LoadedModel> {
    const t0 = performance.now();
    const profileDir = join(options.stateDir, 'runtime', 'profile');
    await mkdir(profileDir, { recursive: true });
    let worker: InferenceWorker;
    try {
      worker = InferenceWorker.spawn(options.onWorkerExit);
    } catch (err) {
      throw new ModelLoadError('worker', (err as Error).message);
    }
    const onAbort = (): void => void worker.terminate();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (options.signal?.aborted) throw new ModelLoadError('worker', 'the load was cancelled');
      // The TensorRT engine cache is an EP-context model file (the only TensorRT option onnxruntime-node can reach).
      const trtCache = await prepareEngineCache(options.stateDir, cfg, file.sha256, options.log);
      const session = {
        providers: cfg.executionProviders, deviceId: cfg.deviceId, intraOpThreads: cfg.intraOpThreads, profileDir,
        ...(trtCache ? { tensorrtCache: { mode: trtCache.plan.mode, contextModel: trtCache.plan.contextModel } } : {}),
      };
      const loaded = await worker.load(file.bytes, session).catch((err: Error) => {
        throw new ModelLoadError('worker', `${file.path}: ${err.message}`);
      });
      for (const failure of loaded.failed) {
        const log = cfg.requireGpu ? options.log.error.bind(options.log) : options.log.warn.bind(options.log);
        log({ provider: failure.provider, error: failure.error, next: loaded.provider },
          `execution provider ${failure.provider} is unavailable here; trying the next one`);
      }
      if (loaded.provider === null) {
        const cpu = loaded.failed.find((f) => f.provider === 'cpu');
        // The CPU provider is always there: when it refuses the file, the file is what is wrong.
        if (cpu) throw new ModelLoadError('invalid', `${file.path}: ONNX Runtime cannot load the model: ${cpu.error}`);
        const why = describeFailures(loaded.failed);
        throw new ModelLoadError('provider',
          `${file.path}: ${cfg.requireGpu ? `requireGpu is set and no GPU provider loads here (${why})` : `no execution provider loads here (${why})`}`);
      }
      if (cfg.requireGpu && loaded.provider === 'cpu') {
        throw new ModelLoadError('provider', `${file.path}: requireGpu is set but no GPU provider loads: ${describeFailures(loaded.failed)}`);
      }
      let io: ModelIo;
      try {
        io = resolveModelIo(cfg, file, loaded);
      } catch (err) {
        throw new ModelLoadError('mismatch', `${file.path}: ${(err as Error).message}`);
      }

      const warm = await worker.warmup(warmupInput(io, file, 0), io.inputDims, WARMUP_RUNS).catch((err: Error) => {
        throw new ModelLoadError(worker.alive ? 'invalid' : 'worker', `${file.path}: the warm-up inference failed: ${err.message}`);
      });
      try {
        checkWarmupOutputs(io, warm.outputs);
      } catch (err) {
        throw new ModelLoadError('mismatch', `${file.path}: ${(err as Error).message}`);
      }
      // Zeros are the inputs at their mean once z-scored; a model can be finite there and NaN on any real reading,
      // so it also runs one std above the mean. A model that is not finite on either never goes live (a hot swap
      // to it is refused and the running version keeps serving).
      refuseNonFinite(file.path, 'all inputs at their mean', warm.outputs, io);
      const plausible = await worker.run(warmupInput(io, file, 1), io.inputDims).catch((err: Error) => {
        throw new ModelLoadError(worker.alive ? 'invalid' : 'worker', `${file.path}: the warm-up inference failed: ${err.message}`);
      });
      refuseNonFinite(file.path, 'all inputs one std above their mean', plausible.outputs, io);
      const confirmed = providerUsed(warm.nodeCounts, loaded.provider);
      if (!confirmed) {
        options.log.warn({ error: warm.profileError }, `could not confirm the execution provider from the profile; assuming ${loaded.provider}`);
      } else if (confirmed !== loaded.provider) {
        options.log.warn({ requested: loaded.provider, nodes: warm.nodeCounts },
          `the session was created for ${loaded.provider} but every node ran on ${confirmed}`);
      }
      const provider = confirmed ?? loaded.provider;
      if (cfg.requireGpu && !isGpu(provider)) {
        throw new ModelLoadError('provider',
          `requireGpu is set but the model ran on ${provider} (nodes per provider: ${JSON.stringify(warm.nodeCounts)}); is this onnxruntime build CPU-only?`);
      }
      if (trtCache) await settleEngineCache(trtCache, provider, loaded.engineCache, options.log);
      if (provider === 'tensorrt' && cfg.tensorrt.fp16) {
        options.log.warn('tensorrt.fp16 is set, but onnxruntime-node passes only deviceId to TensorRT: the engine runs at FP32');
      }
      return new LoadedModel(file, io, provider, warm.nodeCounts, loaded.failed, performance.now() - t0, warm.runMs, worker);
    } catch (err) {
      await worker.terminate();
      if (err instanceof ModelLoadError) throw err;
      throw new ModelLoadError('worker', `${file.path}: ${(err as Error).message}`);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * The window fed at warm-up: every feature `stds` standard deviations above its mean, as the model sees it. With
 * the gateway's z-scoring that is `stds` itself; a model fed raw values (normalisation: none) gets the metadata's
 * own mean and std when it has them, else `stds` as a raw value.
 */
function warmupInput(io: ModelIo, file: ModelFile, stds: number): Float32Array {
  const size = io.inputDims.reduce((a, b) => a * b, 1);
  const features = io.inputDims.at(-1)!;
  const input = new Float32Array(size);
  const meta = file.metadata?.inputs;
  const raw = io.normalisation || meta?.length !== features ? undefined
    : { mean: meta.map((i) => i.mean), std: meta.map((i) => i.std) };
  for (let i = 0; i < size; i++) {
    const f = i % features;
    input[i] = raw ? raw.mean[f]! + stds * raw.std[f]! : stds;
  }
  return input;
}

/** Throws ModelLoadError('nonfinite') naming the first NaN or infinite value among `outputs`. */
function refuseNonFinite(path: string, fed: string, outputs: OutputTensors, io: ModelIo): void {
  for (const [name, tensor] of Object.entries(outputs)) {
    const index = tensor.data.findIndex((v) => !Number.isFinite(v));
    if (index < 0) continue;
    const role = name === io.rule.name ? 'the alert rule\'s output' : 'output';
    throw new ModelLoadError(
      'nonfinite',
      `${path}: the warm-up inference with ${fed} returned ${tensor.data[index]} in ${role} "${name}" (element ${index}): ` +
        'the model is not used (a NaN or infinite output can neither raise nor clear an alert)',
    );
  }
}

function isGpu(provider: string): provider is Exclude<ExecutionProvider, 'cpu'> {
  return provider === 'cuda' || provider === 'tensorrt';
}

function describeFailures(failed: ProviderAttempt[]): string {
  return failed.map((f) => `${f.provider}: ${f.error}`).join('; ') || 'none was tried';
}
