import type { ExecutionProvider } from './config.js';

/**
 * ONNX Runtime has no API that says which execution provider ran a session's nodes: a session asked for CUDA may
 * still run every node on the CPU (the linux/arm64 npm build has no GPU code and accepts the request silently).
 * Its profiling output does say it: every `Node` event carries `args.provider` (e.g. `CUDAExecutionProvider`).
 */

/** ONNX Runtime's provider type names → the names used in the config. */
const PROVIDER_NAMES: Record<string, ExecutionProvider> = {
  CPUExecutionProvider: 'cpu',
  CUDAExecutionProvider: 'cuda',
  TensorrtExecutionProvider: 'tensorrt',
};

/** Node events per ONNX Runtime provider type, e.g. `{ CPUExecutionProvider: 12 }`. */
export type ProviderNodeCounts = Record<string, number>;

/** Counts the kernel events of one profiling JSON file per provider. */
export function countNodesByProvider(profile: unknown): ProviderNodeCounts {
  const counts: ProviderNodeCounts = {};
  if (!Array.isArray(profile)) return counts;
  for (const event of profile) {
    const e = event as { cat?: unknown; args?: { provider?: unknown } } | null;
    if (e?.cat !== 'Node' || typeof e.args?.provider !== 'string') continue;
    counts[e.args.provider] = (counts[e.args.provider] ?? 0) + 1;
  }
  return counts;
}

/**
 * The provider that really ran the model: the requested one if any node ran on it, otherwise the provider that
 * ran most nodes. GPU sessions normally leave a few shape nodes on the CPU; that is still a GPU session. Returns
 * undefined when the profile holds no node events (then the caller can only trust the session creation). A provider
 * without a config name is returned as ONNX Runtime names it.
 */
export function providerUsed(counts: ProviderNodeCounts, requested: ExecutionProvider): string | undefined {
  let best: [string, number] | undefined;
  for (const [ortName, n] of Object.entries(counts)) {
    if (PROVIDER_NAMES[ortName] === requested && n > 0) return requested;
    if (!best || n > best[1]) best = [ortName, n];
  }
  if (!best) return undefined;
  return PROVIDER_NAMES[best[0]] ?? best[0];
}
