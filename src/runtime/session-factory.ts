import { randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { ExecutionProvider } from './config.js';
import type {
  EngineCacheOutcome, OutputTensor, OutputTensors, ProviderAttempt, SessionRequest, ValueInfo,
} from './inference-protocol.js';
import { countNodesByProvider, type ProviderNodeCounts } from './provider-profile.js';

/**
 * Session creation with our own fallback chain. onnxruntime-node 1.30 on linux/x64 without the GPU libraries
 * throws at session creation when `executionProviders` names an unavailable provider, even when `cpu` follows it
 * in the list: there is no built-in fallback. So each provider is tried alone, in order.
 */

export interface CreatedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
  failed: ProviderAttempt[];
  createMs: number;
  /** Prefix of the profiling file the session writes (when created with profiling). */
  profilePrefix?: string;
  /** What the tensorrt session did with the engine cache, when one was requested. */
  engineCache?: EngineCacheOutcome;
}

/**
 * The options one provider's session is created with. What of them reaches ONNX Runtime is decided by
 * onnxruntime-node's `js/node/src/session_options_helper.cc` (ONNX Runtime 1.30): of a provider object only `name`
 * and `deviceId` are read (CUDA and TensorRT get V2 option structs with `device_id` set and everything else at ONNX
 * Runtime's defaults: TensorRT at FP32, no engine cache); every string in `extra` becomes a session configuration
 * entry under its dotted key. So the engine cache can only be asked for with the `ep.context_*` entries, and only
 * for tensorrt (see tensorrt-engine-cache.ts); `build` asks ONNX Runtime to write the engine, embedded (mode 1), into
 * `contextModel`. A `reuse` session is created from the context model itself and needs no entry.
 */
export function sessionOptions(provider: ExecutionProvider, request: SessionRequest, profilePrefix?: string): ort.InferenceSession.SessionOptions {
  const generate = provider === 'tensorrt' && request.tensorrtCache?.mode === 'build';
  return {
    executionProviders: [provider === 'cpu' ? 'cpu' : { name: provider, deviceId: request.deviceId }],
    intraOpNumThreads: request.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // 3 = errors only: ORT's warnings (e.g. nodes placed on the CPU) are reported by us from the profile instead.
    logSeverityLevel: 3,
    extra: {
      // Inference is periodic: threads that busy-wait for the next run would burn the cores ingestion needs.
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
      ...(generate
        ? { ep: { context_enable: '1', context_file_path: request.tensorrtCache!.contextModel, context_embed_mode: '1' } }
        : {}),
    },
    ...(profilePrefix ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
  };
}

/**
 * Creates one provider's session. For tensorrt with a cached engine, the context model is loaded instead of the
 * model; when it does not load (a TensorRT or driver upgrade the version check missed, a damaged file) it is deleted
 * and the engine is built from the model again (ONNX Runtime does not overwrite an existing context model).
 */
async function createFor(
  provider: ExecutionProvider, bytes: Uint8Array, request: SessionRequest, profilePrefix: string | undefined,
): Promise<{ session: ort.InferenceSession; engineCache?: EngineCacheOutcome }> {
  const cache = provider === 'tensorrt' ? request.tensorrtCache : undefined;
  if (cache?.mode === 'reuse') {
    try {
      return { session: await ort.InferenceSession.create(cache.contextModel, sessionOptions(provider, request, profilePrefix)), engineCache: { state: 'reused' } };
    } catch (err) {
      await rm(cache.contextModel, { force: true });
      const rebuild = { ...request, tensorrtCache: { mode: 'build' as const, contextModel: cache.contextModel } };
      const session = await ort.InferenceSession.create(bytes, sessionOptions(provider, rebuild, profilePrefix));
      return { session, engineCache: { state: 'rebuilt', error: ortErrorMessage(err) } };
    }
  }
  const session = await ort.InferenceSession.create(bytes, sessionOptions(provider, request, profilePrefix));
  return cache ? { session, engineCache: { state: 'built' } } : { session };
}

/** First line of an ONNX Runtime error, without its source-file prefix noise. */
export function ortErrorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n').find((line) => line.trim() !== '') ?? text).trim();
}

/**
 * Creates a session on the first provider of `request.providers` that loads. Throws an Error naming every
 * provider's failure when none loads. With `profile`, profiling is on from creation: call `readProfile` after the
 * first run (it also ends profiling, so later runs pay nothing for it).
 */
export async function createSession(bytes: Uint8Array, request: SessionRequest, profile: boolean): Promise<CreatedSession> {
  const failed: ProviderAttempt[] = [];
  for (const provider of request.providers) {
    const profilePrefix = profile ? join(request.profileDir, `profile-${randomUUID()}`) : undefined;
    const t0 = performance.now();
    try {
      const { session, engineCache } = await createFor(provider, bytes, request, profilePrefix);
      return {
        session, provider, failed, createMs: performance.now() - t0,
        ...(profilePrefix ? { profilePrefix } : {}), ...(engineCache ? { engineCache } : {}),
      };
    } catch (err) {
      failed.push({ provider, error: ortErrorMessage(err) });
    }
  }
  throw new SessionCreateError(failed);
}

/** No provider could create a session; `failed` holds each provider's reason. */
export class SessionCreateError extends Error {
  override readonly name = 'SessionCreateError';
  constructor(readonly failed: ProviderAttempt[]) {
    super(`no execution provider could load the model: ${failed.map((f) => `${f.provider}: ${f.error}`).join('; ')}`);
  }
}

/** Ends profiling and counts the profiled kernel events per provider; the profiling file is deleted. */
export async function readProfile(created: CreatedSession): Promise<ProviderNodeCounts> {
  if (!created.profilePrefix) throw new Error('the session was created without profiling');
  created.session.endProfiling();
  const dir = join(created.profilePrefix, '..');
  const base = created.profilePrefix.slice(dir.length + 1);
  const files = (await readdir(dir)).filter((f) => f.startsWith(base) && f.endsWith('.json'));
  try {
    if (files.length === 0) throw new Error(`ONNX Runtime wrote no profiling file ${created.profilePrefix}_*.json`);
    return countNodesByProvider(JSON.parse(await readFile(join(dir, files[0]!), 'utf8')));
  } finally {
    await Promise.all(files.map((f) => rm(join(dir, f), { force: true })));
  }
}

export function valueInfos(metadata: readonly ort.InferenceSession.ValueMetadata[]): ValueInfo[] {
  return metadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, shape: [] }));
}

/** Runs one inference on the session's single input. */
export async function runSession(session: ort.InferenceSession, input: Float32Array, dims: readonly number[]): Promise<OutputTensors> {
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input, dims) };
  const results = await session.run(feeds);
  const outputs: OutputTensors = {};
  for (const [name, tensor] of Object.entries(results)) outputs[name] = toOutputTensor(tensor);
  return outputs;
}

function toOutputTensor(tensor: ort.Tensor): OutputTensor {
  const source = tensor.data;
  const data = new Float64Array(tensor.size);
  if (tensor.type === 'string') {
    data.fill(Number.NaN);
  } else if (tensor.type === 'float16') {
    const bits = source as Uint16Array;
    for (let i = 0; i < data.length; i++) data[i] = halfToNumber(bits[i]!);
  } else {
    const values = source as ArrayLike<number | bigint>;
    for (let i = 0; i < data.length; i++) data[i] = Number(values[i]);
  }
  return { type: tensor.type, dims: [...tensor.dims], data };
}

/** IEEE 754 binary16 bits → number (onnxruntime-node hands float16 tensors over as raw Uint16 bits). */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
