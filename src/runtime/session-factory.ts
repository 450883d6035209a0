import { randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { ExecutionProvider } from './config.js';
import type { OutputTensor, OutputTensors, ProviderAttempt, SessionRequest, ValueInfo } from './inference-protocol.js';
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
}

function providerOption(provider: ExecutionProvider, deviceId: number): ort.InferenceSession.ExecutionProviderConfig {
  if (provider === 'cpu') return 'cpu';
  // onnxruntime-node passes only deviceId to CUDA/TensorRT; TensorRT's other options come from ORT_TENSORRT_*.
  return { name: provider, deviceId };
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
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: [providerOption(provider, request.deviceId)],
        intraOpNumThreads: request.intraOpThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // 3 = errors only: ORT's warnings (e.g. nodes placed on the CPU) are reported by us from the profile instead.
        logSeverityLevel: 3,
        // Inference is periodic: threads that busy-wait for the next run would burn the cores ingestion needs.
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
        ...(profilePrefix ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
      });
      return { session, provider, failed, createMs: performance.now() - t0, ...(profilePrefix ? { profilePrefix } : {}) };
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
