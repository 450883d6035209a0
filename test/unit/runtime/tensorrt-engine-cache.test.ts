/**
 * The TensorRT engine cache as far as a machine without a GPU can show it: the file layout, when a cached engine is
 * reused and when it is thrown away, what is committed, and what the load does with each outcome. ONNX Runtime writing
 * the context model is simulated by writing the file where it is asked to (no TensorRT here).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONTEXT_MODEL_FILE, commitEngineCache, engineCacheDir, modelCacheRoot, onnxruntimeVersion, planEngineCache, prepareEngineCache,
  pruneEngineCaches, settleEngineCache, tensorrtVersion, type EngineCacheKey,
} from '../../../src/runtime/tensorrt-engine-cache.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const key = (over: Partial<EngineCacheKey> = {}): EngineCacheKey => ({
  modelSha256: SHA_A, onnxruntime: '1.30.0', tensorrt: '10.3.0', fp16: false, deviceId: 0, ...over,
});

function logger() {
  const lines: Array<{ level: 'info' | 'warn'; msg: string; obj: object }> = [];
  return {
    lines,
    info: (obj: object, msg: string) => lines.push({ level: 'info', msg, obj }),
    warn: (obj: object, msg: string) => lines.push({ level: 'warn', msg, obj }),
  };
}

let state: string;
beforeEach(() => {
  state = mkdtempSync(join(tmpdir(), 'lg-trt-'));
});
afterEach(() => rmSync(state, { recursive: true, force: true }));

describe('engine cache layout', () => {
  it('is <stateDir>/trt-cache/<model>/<first 16 hex digits of the model hash>/model_ctx.onnx', async () => {
    const dir = engineCacheDir('/var/lib/lineguard', 'press1', 'abcdef0123456789'.repeat(4));
    expect(dir).toBe('/var/lib/lineguard/trt-cache/press1/abcdef0123456789');
    expect(modelCacheRoot('/var/lib/lineguard', 'press1')).toBe('/var/lib/lineguard/trt-cache/press1');
    const plan = await planEngineCache(engineCacheDir(state, 'press1', SHA_A), key());
    expect(plan).toEqual({ mode: 'build', dir: join(state, 'trt-cache/press1/aaaaaaaaaaaaaaaa'), contextModel: join(state, 'trt-cache/press1/aaaaaaaaaaaaaaaa', CONTEXT_MODEL_FILE) });
    expect(existsSync(plan.dir)).toBe(true); // ONNX Runtime writes into a directory that exists
  });

  it('reads the onnxruntime version from the installed package', () => {
    expect(onnxruntimeVersion()).toMatch(/^1\.30\.\d+$/);
  });

  it('finds the TensorRT version from the libnvinfer file names (full version, newest), or unknown', () => {
    const lib = join(state, 'lib');
    mkdirSync(lib);
    expect(tensorrtVersion([lib, join(state, 'missing')])).toBe('unknown');
    for (const f of ['libnvinfer.so', 'libnvinfer.so.10', 'libnvinfer.so.10.3.0', 'libnvinfer.so.8.6.2', 'libnvinfer_plugin.so.10.9.9']) writeFileSync(join(lib, f), '');
    expect(tensorrtVersion([lib])).toBe('10.3.0');
  });
});

describe('reuse and invalidation', () => {
  async function built(k = key()): Promise<string> {
    const plan = await planEngineCache(engineCacheDir(state, 'm', k.modelSha256), k);
    writeFileSync(plan.contextModel, 'engine bytes'); // what ONNX Runtime writes
    expect(await commitEngineCache(plan, k, new Date('2030-01-01T00:00:00Z'))).toBe('saved');
    return plan.dir;
  }

  it('reuses a committed engine with the same key', async () => {
    const dir = await built();
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))).toEqual({ ...key(), contextBytes: 12, createdAt: '2030-01-01T00:00:00.000Z' });
    expect(await planEngineCache(dir, key())).toEqual({ mode: 'reuse', dir, contextModel: join(dir, CONTEXT_MODEL_FILE) });
  });

  it('a changed model file gets its own directory; the other versions are pruned after the swap', async () => {
    const a = await built();
    const b = await built(key({ modelSha256: SHA_B }));
    expect(a).not.toBe(b);
    expect(await pruneEngineCaches(modelCacheRoot(state, 'm'), b)).toEqual(['aaaaaaaaaaaaaaaa']);
    expect(readdirSync(modelCacheRoot(state, 'm'))).toEqual(['bbbbbbbbbbbbbbbb']);
    expect(await pruneEngineCaches(join(state, 'missing'), b)).toEqual([]);
  });

  it.each([
    ['onnxruntime', { onnxruntime: '1.31.0' }, 'onnxruntime 1.30.0 → 1.31.0'],
    ['TensorRT', { tensorrt: '10.7.0' }, 'tensorrt 10.3.0 → 10.7.0'],
    ['fp16', { fp16: true }, 'fp16 false → true'],
    ['the device', { deviceId: 1 }, 'deviceId 0 → 1'],
  ])('a new %s version invalidates the engine: the directory is emptied for a rebuild', async (_what, change, why) => {
    const dir = await built();
    const plan = await planEngineCache(dir, key(change));
    expect(plan).toMatchObject({ mode: 'build', invalidated: why });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a context model without a manifest (a crash while building) or of another size is rebuilt', async () => {
    const dir = engineCacheDir(state, 'm', SHA_A);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, CONTEXT_MODEL_FILE), 'half an engine');
    expect(await planEngineCache(dir, key())).toMatchObject({ mode: 'build' });
    expect(readdirSync(dir)).toEqual([]);

    await built();
    writeFileSync(join(dir, CONTEXT_MODEL_FILE), 'truncated');
    expect(await planEngineCache(dir, key())).toMatchObject({ mode: 'build', invalidated: 'the context model is 9 bytes, not the 12 committed' });
    await built();
    rmSync(join(dir, CONTEXT_MODEL_FILE));
    expect(await planEngineCache(dir, key())).toMatchObject({ mode: 'build', invalidated: 'the context model is missing' });
  });

  it('commits nothing when ONNX Runtime wrote no context model', async () => {
    const plan = await planEngineCache(engineCacheDir(state, 'm', SHA_A), key());
    expect(await commitEngineCache(plan, key())).toBe('not-written');
    expect(readdirSync(plan.dir)).toEqual([]);
  });
});

describe('what the load does with the outcome', () => {
  const cfg = (over: Partial<{ executionProviders: string[]; engineCache: boolean; fp16: boolean }> = {}) => ({
    name: 'm', deviceId: 0, executionProviders: over.executionProviders ?? ['tensorrt', 'cpu'],
    tensorrt: { fp16: over.fp16 ?? false, engineCache: over.engineCache ?? true },
  });

  it('asks for no cache unless tensorrt is listed and engineCache is on', async () => {
    const log = logger();
    expect(await prepareEngineCache(state, cfg({ executionProviders: ['cuda', 'cpu'] }), SHA_A, log)).toBeUndefined();
    expect(await prepareEngineCache(state, cfg({ engineCache: false }), SHA_A, log)).toBeUndefined();
    const use = await prepareEngineCache(state, cfg({ fp16: true }), SHA_A, log);
    expect(use?.plan.mode).toBe('build');
    expect(use?.key).toMatchObject({ modelSha256: SHA_A, onnxruntime: onnxruntimeVersion(), fp16: true, deviceId: 0 });
  });

  it('built on tensorrt and written: committed, and the next load reuses it', async () => {
    const log = logger();
    const use = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    writeFileSync(use.plan.contextModel, 'engine');
    await settleEngineCache(use, 'tensorrt', { state: 'built' }, log);
    expect(log.lines.at(-1)?.msg).toMatch(/^TensorRT engine saved as an EP-context model/);
    const next = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    expect(next.plan.mode).toBe('reuse');
    await settleEngineCache(next, 'tensorrt', { state: 'reused' }, log);
    expect(log.lines.at(-1)?.msg).toBe('TensorRT engine loaded from the cache (EP-context model)');
  });

  it('built on tensorrt but nothing written: says the engine is not cached, leaves nothing behind', async () => {
    const log = logger();
    const use = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    await settleEngineCache(use, 'tensorrt', { state: 'built' }, log);
    expect(log.lines.at(-1)).toMatchObject({ level: 'warn', msg: expect.stringMatching(/^ONNX Runtime wrote no EP-context model, so the TensorRT engine is not cached/) });
    expect(existsSync(use.plan.dir)).toBe(false);
  });

  it('a cached engine that did not load and was rebuilt is reported, and the new one committed', async () => {
    const log = logger();
    const use = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    writeFileSync(use.plan.contextModel, 'new engine');
    await settleEngineCache(use, 'tensorrt', { state: 'rebuilt', error: 'could not deserialize engine' }, log);
    expect(log.lines.map((l) => l.level)).toEqual(['warn', 'info']);
    expect(log.lines[0]).toMatchObject({ obj: { error: 'could not deserialize engine' } });
    expect((await planEngineCache(use.plan.dir, use.key)).mode).toBe('reuse');
  });

  it('a build that fell back to another provider removes its empty directory; a reused cache is kept', async () => {
    const log = logger();
    const use = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    await settleEngineCache(use, 'cpu', undefined, log);
    expect(existsSync(use.plan.dir)).toBe(false);

    const kept = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    writeFileSync(kept.plan.contextModel, 'engine');
    await commitEngineCache(kept.plan, kept.key);
    const reuse = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    await settleEngineCache(reuse, 'cuda', undefined, log); // e.g. [cuda, tensorrt]: tensorrt never tried
    expect(readdirSync(reuse.plan.dir).sort()).toEqual(['manifest.json', CONTEXT_MODEL_FILE]);
  });

  it('logs why a stale cache is rebuilt', async () => {
    const log = logger();
    const use = (await prepareEngineCache(state, cfg(), SHA_A, log))!;
    writeFileSync(use.plan.contextModel, 'engine');
    await commitEngineCache(use.plan, use.key);
    await prepareEngineCache(state, cfg({ fp16: true }), SHA_A, log);
    expect(log.lines.at(-1)).toMatchObject({ msg: 'the cached TensorRT engine is stale: it is built again', obj: { why: 'fp16 false → true' } });
  });
});
