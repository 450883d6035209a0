import { describe, expect, it } from 'vitest';
import { countNodesByProvider, providerUsed } from '../../../src/runtime/provider-profile.js';

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
