import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { EngineCacheOutcome } from './inference-protocol.js';

/**
 * The TensorRT engine cache, kept as an ONNX Runtime EP-context model.
 *
 * What reaches ONNX Runtime from onnxruntime-node 1.30 (read in ONNX Runtime's `js/node/src/session_options_helper.cc`):
 * for `{ name: 'tensorrt', deviceId }` the binding calls `CreateTensorRTProviderOptions`, sets `device_id` and calls
 * `AppendExecutionProvider_TensorRT_V2`; nothing else of the provider object is read. The V2 path marks the options as
 * given (`has_trt_options = true` in `tensorrt_provider_factory.cc`), and the provider's constructor
 * (`tensorrt_execution_provider.cc`) reads the `ORT_TENSORRT_*` environment variables only when no options were
 * given. So neither `trt_fp16_enable` nor `trt_engine_cache_enable` can be set from Node.js, by any means.
 *
 * What does reach it: `sessionOptions.extra`, which the binding turns into session configuration entries
 * (`AddConfigEntry`, dotted keys, string values). ONNX Runtime 1.17 (microsoft/onnxruntime#19154) maps the entries
 * `ep.context_enable`, `ep.context_file_path` and `ep.context_embed_mode` (onnxruntime_session_options_config_keys.h)
 * 1:1 onto the TensorRT provider's `trt_dump_ep_context_model`, `trt_ep_context_file_path` and
 * `trt_ep_context_embed_mode`: the provider then writes the engine it built into an EP-context model (embed mode 1:
 * the engine bytes inside one `.onnx` file), and loading that file later deserialises the engine instead of building
 * it. Those are the only TensorRT options Lineguard can reach.
 *
 * NOT VERIFIED ON A GPU: nothing in this project can run the TensorRT provider. Two things may still stop it: the
 * binding appends the provider before it adds the `extra` entries, and microsoft/onnxruntime#24742 (open) reports a
 * test of EP-context caching set through session options failing for the TensorRT EP. So the cache is checked, not
 * assumed: after a build, `commitEngineCache` looks for the file ONNX Runtime should have written and says when it is
 * not there (then every start builds the engine again, and the log and docs/jetson.md say so).
 *
 * Layout: `<stateDir>/trt-cache/<model name>/<first 16 hex digits of the model file's SHA-256>/` holding
 * `model_ctx.onnx` (written by ONNX Runtime) and `manifest.json` (written by Lineguard last, after the engine built
 * and the warm-up passed: it is the commit marker). The manifest names the model hash, the onnxruntime and TensorRT
 * versions, fp16 and the device; any difference, a missing manifest or a context file of another size means the cache
 * is stale and is rebuilt.
 */

/** The file ONNX Runtime writes the EP-context model to, in a model version's cache directory. */
export const CONTEXT_MODEL_FILE = 'model_ctx.onnx';
const MANIFEST_FILE = 'manifest.json';

/** What an engine is tied to: any change means the cached engine must not be used. */
export interface EngineCacheKey {
  /** SHA-256 of the model file (an engine has the weights baked in). */
  modelSha256: string;
  onnxruntime: string;
  /** TensorRT library version found on this machine, or `unknown`. */
  tensorrt: string;
  fp16: boolean;
  deviceId: number;
}

interface EngineCacheManifest extends EngineCacheKey {
  /** Size of the context model file when it was committed. */
  contextBytes: number;
  createdAt: string;
}

/** What to do with the TensorRT session of one model version. */
export type EngineCachePlan =
  | { mode: 'reuse'; dir: string; contextModel: string }
  | { mode: 'build'; dir: string; contextModel: string; /** Why an existing cache was thrown away. */ invalidated?: string };

/** The installed onnxruntime-node version, read without loading the native binding into this thread. */
export function onnxruntimeVersion(): string {
  try {
    const path = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Where JetPack and NVIDIA's Debian packages put libnvinfer, besides LD_LIBRARY_PATH. */
const LIBRARY_DIRS = ['/usr/lib/aarch64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/usr/local/cuda/lib64', '/usr/lib/aarch64-linux-gnu/tegra'];

/**
 * The TensorRT version on this machine, from the name of its library (`libnvinfer.so.10.3.0`), looked up in
 * LD_LIBRARY_PATH and the usual directories; `unknown` when there is none. ONNX Runtime has no API for it, and the
 * process must not load TensorRT just to ask. A wrong answer only costs a rebuild.
 */
export function tensorrtVersion(dirs: readonly string[] = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIBRARY_DIRS]): string {
  let best: number[] | undefined;
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^libnvinfer\.so\.(\d+(?:\.\d+)*)$/.exec(name);
      if (!m) continue;
      const parts = m[1]!.split('.').map(Number);
      // libnvinfer.so.10 is a link to libnvinfer.so.10.3.0: the full version wins, then the newest.
      if (!best || parts.length > best.length || (parts.length === best.length && compareVersions(parts, best) > 0)) best = parts;
    }
  }
  return best ? best.join('.') : 'unknown';
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** All engine caches of one model: <stateDir>/trt-cache/<model name>. */
export function modelCacheRoot(stateDir: string, modelName: string): string {
  return join(stateDir, 'trt-cache', modelName);
}

/** The cache directory of one model version: <stateDir>/trt-cache/<model>/<sha256 prefix>. */
export function engineCacheDir(stateDir: string, modelName: string, sha256: string): string {
  return join(modelCacheRoot(stateDir, modelName), sha256.slice(0, 16));
}

/**
 * Decides whether the cached engine of `dir` can be used for `key`: `reuse` when the manifest matches and the
 * context model is there at its committed size; otherwise `build`, after emptying the directory: a stale engine is
 * never loaded, and ONNX Runtime writes the new context model into a directory that exists.
 */
export async function planEngineCache(dir: string, key: EngineCacheKey): Promise<EngineCachePlan> {
  const contextModel = join(dir, CONTEXT_MODEL_FILE);
  const manifest = await readManifest(dir);
  let invalidated: string | undefined;
  if (manifest) {
    const changed = (Object.keys(key) as Array<keyof EngineCacheKey>).filter((k) => manifest[k] !== key[k]);
    if (changed.length === 0) {
      const size = await stat(contextModel).then((s) => s.size, () => -1);
      if (size === manifest.contextBytes && size > 0) return { mode: 'reuse', dir, contextModel };
      invalidated = size < 0 ? 'the context model is missing' : `the context model is ${size} bytes, not the ${manifest.contextBytes} committed`;
    } else {
      invalidated = changed.map((k) => `${k} ${String(manifest[k])} → ${String(key[k])}`).join(', ');
    }
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return { mode: 'build', dir, contextModel, ...(invalidated ? { invalidated } : {}) };
}

/**
 * After a session built from the original model went live on TensorRT: commits the context model ONNX Runtime wrote
 * (`saved`), or reports that it wrote none (`not-written`: the EP-context entries did not reach the provider).
 */
export async function commitEngineCache(plan: EngineCachePlan, key: EngineCacheKey, now = new Date()): Promise<'saved' | 'not-written'> {
  const size = await stat(plan.contextModel).then((s) => (s.isFile() ? s.size : 0), () => 0);
  if (size === 0) return 'not-written';
  const manifest: EngineCacheManifest = { ...key, contextBytes: size, createdAt: now.toISOString() };
  const tmp = join(plan.dir, `${MANIFEST_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, join(plan.dir, MANIFEST_FILE));
  return 'saved';
}

/** Forgets a cache whose context model did not load: the next load builds the engine again. */
export async function discardEngineCache(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

async function readManifest(dir: string): Promise<EngineCacheManifest | undefined> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as Partial<EngineCacheManifest>;
    return typeof parsed.contextBytes === 'number' ? (parsed as EngineCacheManifest) : undefined;
  } catch {
    return undefined;
  }
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

/** What the load needs to know about one model version's engine cache. */
export interface TensorrtCacheUse {
  plan: EngineCachePlan;
  key: EngineCacheKey;
}

/** The cache plan of one model version, or undefined when the model does not ask for TensorRT with a cache. */
export async function prepareEngineCache(
  stateDir: string,
  cfg: { name: string; deviceId: number; executionProviders: readonly string[]; tensorrt: { fp16: boolean; engineCache: boolean } },
  sha256: string,
  log: EngineCacheLog,
): Promise<TensorrtCacheUse | undefined> {
  if (!cfg.executionProviders.includes('tensorrt') || !cfg.tensorrt.engineCache) return undefined;
  const key: EngineCacheKey = {
    modelSha256: sha256, onnxruntime: onnxruntimeVersion(), tensorrt: tensorrtVersion(), fp16: cfg.tensorrt.fp16, deviceId: cfg.deviceId,
  };
  const plan = await planEngineCache(engineCacheDir(stateDir, cfg.name, sha256), key);
  if (plan.mode === 'build' && plan.invalidated) log.info({ dir: plan.dir, why: plan.invalidated }, 'the cached TensorRT engine is stale: it is built again');
  return { plan, key };
}

/** The part of a pino logger used here. */
export interface EngineCacheLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * After the warm-up passed: commits a newly written context model, says plainly when ONNX Runtime wrote none, and
 * removes the directory of a build that did not end on TensorRT (nothing in it to keep).
 */
export async function settleEngineCache(
  use: TensorrtCacheUse, provider: string, outcome: EngineCacheOutcome | undefined, log: EngineCacheLog,
): Promise<void> {
  const { plan, key } = use;
  if (provider !== 'tensorrt' || !outcome) {
    if (plan.mode === 'build') await discardEngineCache(plan.dir);
    return;
  }
  if (outcome.state === 'reused') {
    log.info({ dir: plan.dir }, 'TensorRT engine loaded from the cache (EP-context model)');
    return;
  }
  if (outcome.state === 'rebuilt') log.warn({ dir: plan.dir, error: outcome.error }, 'the cached TensorRT engine did not load; it was built again');
  if ((await commitEngineCache(plan, key)) === 'saved') {
    log.info({ dir: plan.dir, file: CONTEXT_MODEL_FILE }, 'TensorRT engine saved as an EP-context model: later starts load it instead of building it');
  } else {
    await discardEngineCache(plan.dir);
    log.warn({ dir: plan.dir },
      'ONNX Runtime wrote no EP-context model, so the TensorRT engine is not cached: it is built again at every start and hot swap ' +
      '(this onnxruntime build does not apply the ep.context_* session entries to TensorRT; see docs/jetson.md, "The TensorRT engine cache")');
  }
}

