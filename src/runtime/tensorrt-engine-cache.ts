import { readFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * onnxruntime-node passes only `deviceId` to TensorRT; the TensorRT execution provider reads its other options
 * from ORT_TENSORRT_* environment variables when a session is created (ONNX Runtime docs, "TensorRT Execution
 * Provider", Environment Variables). Those variables are process-wide, so sessions that may use TensorRT are
 * created one at a time, each with its own variables set for the duration of the creation.
 */

export interface TensorrtOptions {
  fp16: boolean;
  engineCache: boolean;
}

let chain: Promise<void> = Promise.resolve();

/** The installed onnxruntime-node version, read without loading the native binding into this thread. */
export function onnxruntimeVersion(): string {
  try {
    const path = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** All engine caches of one model: <stateDir>/trt-cache/<model name>. */
export function modelCacheRoot(stateDir: string, modelName: string): string {
  return join(stateDir, 'trt-cache', modelName);
}

/**
 * Where the engines of one model version are cached: <stateDir>/trt-cache/<model>/<sha256 prefix>-ort<version>.
 * An engine has the weights baked in and is tied to the ONNX Runtime (and TensorRT) build: a new model file or a
 * new onnxruntime must never pick up an old engine, so each gets its own directory.
 */
export function engineCacheDir(stateDir: string, modelName: string, sha256: string): string {
  return join(modelCacheRoot(stateDir, modelName), `${sha256.slice(0, 16)}-ort${onnxruntimeVersion()}`);
}

/** Removes the engine caches of a model's other versions (after a swap): engines are large and never reused. */
export async function pruneEngineCaches(root: string, keep: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return [];
  }
  const removed = entries.filter((e) => join(root, e) !== keep);
  await Promise.all(removed.map((e) => rm(join(root, e), { recursive: true, force: true })));
  return removed;
}

/** The variables set while a TensorRT session for this model is created. */
export function tensorrtEnv(options: TensorrtOptions, cacheDir: string): Record<string, string> {
  return {
    ORT_TENSORRT_FP16_ENABLE: options.fp16 ? '1' : '0',
    ORT_TENSORRT_ENGINE_CACHE_ENABLE: options.engineCache ? '1' : '0',
    ...(options.engineCache ? { ORT_TENSORRT_CACHE_PATH: cacheDir } : {}),
  };
}

/**
 * Runs `create` (which creates the session, in a worker thread of this process) with the variables set, after any
 * other TensorRT session creation finished; the previous values are restored afterwards.
 */
export async function withTensorrtEnv<T>(env: Record<string, string>, create: () => Promise<T>): Promise<T> {
  const previous = chain;
  let release!: () => void;
  chain = new Promise((resolve) => {
    release = resolve;
  });
  await previous;
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  try {
    if (env.ORT_TENSORRT_CACHE_PATH) await mkdir(env.ORT_TENSORRT_CACHE_PATH, { recursive: true });
    Object.assign(process.env, env);
    return await create();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    release();
  }
}
