import { afterEach, describe, expect, it } from 'vitest';
import { countNodesByProvider, providerUsed } from '../../../src/runtime/provider-profile.js';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineCacheDir, modelCacheRoot, onnxruntimeVersion, pruneEngineCaches, tensorrtEnv, withTensorrtEnv } from '../../../src/runtime/tensorrt-env.js';

const node = (provider: string) => ({ cat: 'Node', name: 'x_kernel_time', args: { provider, op_name: 'MatMul' } });

describe('countNodesByProvider', () => {
  it('counts the kernel events of an ONNX Runtime profile per provider', () => {
    const profile = [
      { cat: 'Session', name: 'model_loading_uri', args: {} },
      node('CUDAExecutionProvider'), node('CUDAExecutionProvider'), node('CPUExecutionProvider'),
      { cat: 'Node', name: 'fence', args: {} },
    ];
    expect(countNodesByProvider(profile)).toEqual({ CUDAExecutionProvider: 2, CPUExecutionProvider: 1 });
    expect(countNodesByProvider({ not: 'a profile' })).toEqual({});
  });
});

describe('providerUsed', () => {
  it('is the requested provider when any node ran on it (shape nodes stay on the CPU in a GPU session)', () => {
    expect(providerUsed({ CPUExecutionProvider: 5, TensorrtExecutionProvider: 1 }, 'tensorrt')).toBe('tensorrt');
  });

  it('is the provider that ran most nodes when the requested one ran none (a CPU-only build accepting cuda)', () => {
    expect(providerUsed({ CPUExecutionProvider: 12 }, 'cuda')).toBe('cpu');
    expect(providerUsed({ DmlExecutionProvider: 3 }, 'cpu')).toBe('DmlExecutionProvider');
  });

  it('is undefined without node events', () => {
    expect(providerUsed({}, 'cpu')).toBeUndefined();
  });
});

describe('TensorRT environment', () => {
  const saved = process.env.ORT_TENSORRT_FP16_ENABLE;
  afterEach(() => {
    if (saved === undefined) delete process.env.ORT_TENSORRT_FP16_ENABLE;
    else process.env.ORT_TENSORRT_FP16_ENABLE = saved;
  });

  it('maps the options to ORT_TENSORRT_* variables with a cache path per model version and onnxruntime version', () => {
    const dir = engineCacheDir('/var/lib/lineguard', 'press1', 'abcdef0123456789'.repeat(4));
    expect(dir).toBe(`/var/lib/lineguard/trt-cache/press1/abcdef0123456789-ort${onnxruntimeVersion()}`);
    expect(onnxruntimeVersion()).toMatch(/^1\.30\.\d+$/);
    expect(tensorrtEnv({ fp16: true, engineCache: true }, dir)).toEqual({
      ORT_TENSORRT_FP16_ENABLE: '1', ORT_TENSORRT_ENGINE_CACHE_ENABLE: '1', ORT_TENSORRT_CACHE_PATH: dir,
    });
    expect(tensorrtEnv({ fp16: false, engineCache: false }, dir)).toEqual({ ORT_TENSORRT_FP16_ENABLE: '0', ORT_TENSORRT_ENGINE_CACHE_ENABLE: '0' });
  });

  it('sets the variables only while a session is created, one creation at a time', async () => {
    process.env.ORT_TENSORRT_FP16_ENABLE = 'operator-value';
    const seen: string[] = [];
    let releaseFirst!: () => void;
    const first = withTensorrtEnv({ ORT_TENSORRT_FP16_ENABLE: '1' }, async () => {
      seen.push(`first:${process.env.ORT_TENSORRT_FP16_ENABLE}`);
      await new Promise<void>((r) => {
        releaseFirst = r;
      });
      seen.push(`first-end:${process.env.ORT_TENSORRT_FP16_ENABLE}`);
    });
    const second = withTensorrtEnv({ ORT_TENSORRT_FP16_ENABLE: '0' }, async () => {
      seen.push(`second:${process.env.ORT_TENSORRT_FP16_ENABLE}`);
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['first:1']); // the second waits
    releaseFirst();
    await Promise.all([first, second]);
    expect(seen).toEqual(['first:1', 'first-end:1', 'second:0']);
    expect(process.env.ORT_TENSORRT_FP16_ENABLE).toBe('operator-value');
  });

  it('prunes the engine caches of other model versions', async () => {
    const state = mkdtempSync(join(tmpdir(), 'lg-trt-'));
    try {
      const keep = engineCacheDir(state, 'm', 'b'.repeat(64));
      mkdirSync(engineCacheDir(state, 'm', 'a'.repeat(64)), { recursive: true });
      mkdirSync(keep, { recursive: true });
      expect(await pruneEngineCaches(modelCacheRoot(state, 'm'), keep)).toHaveLength(1);
      expect(readdirSync(modelCacheRoot(state, 'm'))).toEqual([keep.split('/').pop()]);
      expect(await pruneEngineCaches(join(state, 'missing'), keep)).toEqual([]);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('restores the variables when the creation fails', async () => {
    delete process.env.ORT_TENSORRT_FP16_ENABLE;
    await expect(withTensorrtEnv({ ORT_TENSORRT_FP16_ENABLE: '1' }, () => Promise.reject(new Error('no GPU')))).rejects.toThrow('no GPU');
    expect(process.env.ORT_TENSORRT_FP16_ENABLE).toBeUndefined();
  });
});
