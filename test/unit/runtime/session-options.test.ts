/**
 * The options each provider's session is created with: what onnxruntime-node 1.30 hands to ONNX Runtime (only
 * `name`/`deviceId` of a provider, and `extra` as session configuration entries). No GPU here: the tensorrt path is
 * checked by the options it builds and by its fallback on this CPU-only machine.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SessionRequest } from '../../../src/runtime/inference-protocol.js';
import { createSession, sessionOptions } from '../../../src/runtime/session-factory.js';
import { fixture } from './runtime-context.js';

// As the inference worker does (init.ortLogLevel): the GPU providers' failed probes would print to stderr.
ort.env.logLevel = 'fatal';

const base: SessionRequest = { providers: ['tensorrt', 'cuda', 'cpu'], deviceId: 1, intraOpThreads: 2, profileDir: '/tmp/p' };
const spinningOff = { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } };

describe('sessionOptions', () => {
  it('cpu: the CPU provider, our threads, spinning off, no EP-context entries even when a cache is asked for', () => {
    const options = sessionOptions('cpu', { ...base, tensorrtCache: { mode: 'build', contextModel: '/s/model_ctx.onnx' } });
    expect(options).toEqual({
      executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all', logSeverityLevel: 3, extra: { session: spinningOff },
    });
  });

  it('cuda: only the device id reaches the provider', () => {
    const options = sessionOptions('cuda', { ...base, tensorrtCache: { mode: 'build', contextModel: '/s/model_ctx.onnx' } });
    expect(options.executionProviders).toEqual([{ name: 'cuda', deviceId: 1 }]);
    expect(options.extra).toEqual({ session: spinningOff });
  });

  it('tensorrt building its engine: the ep.context_* entries ask for an embedded EP-context model at the cache path', () => {
    const options = sessionOptions('tensorrt', { ...base, tensorrtCache: { mode: 'build', contextModel: '/s/trt-cache/m/aaaa/model_ctx.onnx' } });
    expect(options.executionProviders).toEqual([{ name: 'tensorrt', deviceId: 1 }]);
    expect(options.extra).toEqual({
      session: spinningOff,
      ep: { context_enable: '1', context_file_path: '/s/trt-cache/m/aaaa/model_ctx.onnx', context_embed_mode: '1' },
    });
    // No fp16 or engine-cache provider options: the binding would ignore them (and no ORT_TENSORRT_* either).
    expect(JSON.stringify(options)).not.toMatch(/fp16|trt_|ORT_TENSORRT/);
  });

  it('tensorrt reusing its engine, or without a cache: no EP-context entries', () => {
    expect(sessionOptions('tensorrt', { ...base, tensorrtCache: { mode: 'reuse', contextModel: '/s/model_ctx.onnx' } }).extra).toEqual({ session: spinningOff });
    expect(sessionOptions('tensorrt', base).extra).toEqual({ session: spinningOff });
  });

  it('profiling from creation when asked', () => {
    expect(sessionOptions('cpu', base, '/tmp/p/profile-1')).toMatchObject({ enableProfiling: true, profileFilePrefix: '/tmp/p/profile-1' });
  });
});

describe('createSession with an engine cache on this CPU-only machine', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lg-session-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['build', 'reuse'] as const)('%s: tensorrt fails, the CPU session is created from the model, no context model is left', async (mode) => {
    const contextModel = join(dir, 'model_ctx.onnx');
    const bytes = readFileSync(fixture('last-value.onnx'));
    const created = await createSession(bytes, { ...base, providers: ['tensorrt', 'cpu'], profileDir: dir, tensorrtCache: { mode, contextModel } }, false);
    try {
      expect(created.provider).toBe('cpu');
      expect(created.failed.map((f) => f.provider)).toEqual(['tensorrt']);
      expect(created.engineCache).toBeUndefined();
      expect(existsSync(contextModel)).toBe(false);
    } finally {
      await created.session.release();
    }
  });
});
