import type { OpcuaTagConfig } from './config.js';
import { parseNodeId, resolveNodeIdText, type ParsedNodeId } from './node-id.js';

/** A tag whose node id was resolved against this session's NamespaceArray. */
export interface ResolvedTag {
  index: number;
  /** `ns=<index>;…` for this session. */
  nodeId: string;
  /** IndexRange of the one array element the tag reads (arrayIndex), as OPC UA writes it. */
  indexRange?: string;
}

export interface Resolution {
  resolved: ResolvedTag[];
  failed: Array<{ index: number; reason: string }>;
}

/** Parses every tag's node id once (the config check already refused malformed ones). */
export function parseTags(tags: readonly OpcuaTagConfig[]): Array<ParsedNodeId | string> {
  return tags.map((t) => {
    const r = parseNodeId(t.nodeId);
    return r.ok ? r.nodeId : r.error;
  });
}

/** Resolves the given tags for one session; namespace URIs are looked up in `namespaceArray`. */
export function resolveTags(
  indices: Iterable<number>, tags: readonly OpcuaTagConfig[], parsed: ReadonlyArray<ParsedNodeId | string>, namespaceArray: readonly string[],
): Resolution {
  const out: Resolution = { resolved: [], failed: [] };
  for (const index of indices) {
    const p = parsed[index]!;
    if (typeof p === 'string') {
      out.failed.push({ index, reason: p });
      continue;
    }
    const r = resolveNodeIdText(p, namespaceArray);
    if (!r.ok) {
      out.failed.push({ index, reason: r.error });
      continue;
    }
    const arrayIndex = tags[index]!.arrayIndex;
    out.resolved.push({ index, nodeId: r.nodeId, ...(arrayIndex !== undefined ? { indexRange: String(arrayIndex) } : {}) });
  }
  return out;
}

/** Monitored items that can share one CreateMonitoredItems call (same requested parameters). */
export interface ItemBucket {
  samplingIntervalMs: number;
  queueSize: number;
  deadband?: OpcuaTagConfig['deadband'];
  items: ResolvedTag[];
}

/**
 * Groups subscribed tags by their requested parameters and cuts the groups into chunks of `chunkSize`: one call
 * with 10,000 items takes ~1 s on node-opcua, one call per item 24 s, and 20,000 in one call hit
 * BadTooManyOperations (STACK-NOTES).
 */
export function bucketize(items: readonly ResolvedTag[], tags: readonly OpcuaTagConfig[], chunkSize: number): ItemBucket[] {
  const groups = new Map<string, ItemBucket>();
  for (const item of items) {
    const t = tags[item.index]!;
    const key = `${t.samplingIntervalMs}|${t.queueSize}|${t.deadband?.type ?? ''}|${t.deadband?.value ?? ''}`;
    let group = groups.get(key);
    if (!group) {
      group = { samplingIntervalMs: t.samplingIntervalMs, queueSize: t.queueSize, ...(t.deadband ? { deadband: t.deadband } : {}), items: [] };
      groups.set(key, group);
    }
    group.items.push(item);
  }
  const out: ItemBucket[] = [];
  for (const group of groups.values()) {
    for (let i = 0; i < group.items.length; i += chunkSize) out.push({ ...group, items: group.items.slice(i, i + chunkSize) });
  }
  return out;
}

/** Poll groups: tags read together on the same period, cut into reads of at most `chunkSize` nodes. */
export function pollGroups(items: readonly ResolvedTag[], tags: readonly OpcuaTagConfig[]): Map<number, ResolvedTag[]> {
  const groups = new Map<number, ResolvedTag[]>();
  for (const item of items) {
    const period = tags[item.index]!.pollIntervalMs ?? 1000;
    let group = groups.get(period);
    if (!group) groups.set(period, (group = []));
    group.push(item);
  }
  return groups;
}
