import type { BrowseDescriptionOptions, ClientSession, ReferenceDescription } from 'node-opcua';
import type { TagValue } from '../../core/tag-sample.js';
import { formatStable } from './node-id.js';
import type { Opcua } from './opcua-module.js';
import { BUILTIN_NAMES, toTagValue } from './value-mapping.js';

/** One variable found by `browse`. */
export interface BrowsedVariable {
  /** Node id for this session (`ns=<index>;…`). */
  nodeId: string;
  /** Node id for a config file (`nsu=<uri>;…`): survives namespace renumbering. */
  stableNodeId: string;
  /** Browse names from below the root to the variable. */
  path: string[];
  /** Declared data type: a built-in name (Double, Int32...) or the data type's browse name. */
  dataType: string;
  /** ValueRank: -1 scalar, ≥ 0 array dimensions. */
  valueRank: number;
  /** Elements when the current value is an array. */
  arrayLength?: number;
  /** Current value as the gateway would carry it (undefined: unreadable or unsupported). */
  value?: TagValue;
  statusName: string;
  /** True when the gateway can read it as a tag as it is. */
  supported: boolean;
  /** Why not, or what to add (arrayIndex). */
  note?: string;
}

export interface BrowseOptions {
  /** Node id to start from, in the session's `ns=` form. */
  root: string;
  maxDepth: number;
  /** Stop after this many nodes (a big PLC has hundreds of thousands). */
  maxNodes: number;
  /** Also walk namespace 0 (the server's own diagnostics: hundreds of variables nobody wants as tags). */
  includeNamespace0: boolean;
  maxItemsPerCall: number;
}

export interface BrowseOutcome {
  variables: BrowsedVariable[];
  namespaceArray: string[];
  /** True when maxNodes cut the walk short. */
  truncated: boolean;
}

const HAS_PROPERTY = 46;
const NODE_CLASS_OBJECT = 1;
const NODE_CLASS_VARIABLE = 2;

interface Pending {
  nodeId: string;
  path: string[];
}

/**
 * Walks the address space breadth-first from `root` along hierarchical references (not HasProperty: EURange and
 * friends are metadata, not tags), then reads DataType, ValueRank and Value of every variable found.
 */
export async function browseVariables(opcua: Opcua, session: ClientSession, options: BrowseOptions): Promise<BrowseOutcome> {
  const namespaceArray = await session.readNamespaceArray();
  const seen = new Set<string>([options.root]);
  const found: Pending[] = [];
  let frontier: Pending[] = [{ nodeId: options.root, path: [] }];
  let truncated = false;
  for (let depth = 0; depth < options.maxDepth && frontier.length > 0 && !truncated; depth++) {
    const next: Pending[] = [];
    for (let i = 0; i < frontier.length && !truncated; i += options.maxItemsPerCall) {
      const chunk = frontier.slice(i, i + options.maxItemsPerCall);
      const descriptions: BrowseDescriptionOptions[] = chunk.map((p) => ({
        nodeId: p.nodeId,
        referenceTypeId: 'HierarchicalReferences',
        includeSubtypes: true,
        browseDirection: opcua.BrowseDirection.Forward,
        nodeClassMask: NODE_CLASS_OBJECT | NODE_CLASS_VARIABLE,
        resultMask: 63,
      }));
      const results = await browseAllPages(session, descriptions);
      results.forEach((refs, k) => {
        for (const ref of refs) {
          if (truncated) return;
          if (isHasProperty(ref)) continue;
          const ns = ref.nodeId.namespace;
          if (ns === 0 && !options.includeNamespace0) continue;
          const id = ref.nodeId.toString();
          if (seen.has(id)) continue;
          seen.add(id);
          if (seen.size > options.maxNodes) {
            truncated = true;
            return;
          }
          const entry = { nodeId: id, path: [...chunk[k]!.path, ref.browseName.name ?? id] };
          if (ref.nodeClass === NODE_CLASS_VARIABLE) found.push(entry);
          next.push(entry);
        }
      });
    }
    frontier = next;
  }
  const variables = await describeVariables(opcua, session, found, namespaceArray, options.maxItemsPerCall);
  variables.sort((a, b) => a.path.join('/').localeCompare(b.path.join('/')));
  return { variables, namespaceArray, truncated };
}

function isHasProperty(ref: ReferenceDescription): boolean {
  return ref.referenceTypeId.namespace === 0 && ref.referenceTypeId.value === HAS_PROPERTY;
}

/** session.browse, following continuation points until every reference is in. */
async function browseAllPages(session: ClientSession, descriptions: BrowseDescriptionOptions[]): Promise<ReferenceDescription[][]> {
  const results = await session.browse(descriptions);
  const out: ReferenceDescription[][] = [];
  for (const result of results) {
    const refs = [...(result.references ?? [])];
    let cp = result.continuationPoint;
    while (cp && cp.length > 0) {
      const [page] = await session.browseNext([cp], false);
      if (!page) break;
      refs.push(...(page.references ?? []));
      cp = page.continuationPoint;
    }
    out.push(refs);
  }
  return out;
}

async function describeVariables(
  opcua: Opcua, session: ClientSession, found: Pending[], namespaceArray: string[], perCall: number,
): Promise<BrowsedVariable[]> {
  const A = opcua.AttributeIds;
  const out: BrowsedVariable[] = [];
  const typeNames = new Map<string, string>();
  const perCallVariables = Math.max(1, Math.floor(perCall / 3));
  for (let i = 0; i < found.length; i += perCallVariables) {
    const chunk = found.slice(i, i + perCallVariables);
    const values = await session.read(chunk.flatMap((p) => [
      { nodeId: p.nodeId, attributeId: A.DataType },
      { nodeId: p.nodeId, attributeId: A.ValueRank },
      { nodeId: p.nodeId, attributeId: A.Value },
    ]));
    const unknownTypes = new Set<string>();
    chunk.forEach((_, k) => {
      const dt = values[k * 3]!.value?.value as { namespace: number; value: unknown; toString(): string } | null;
      if (dt && !(dt.namespace === 0 && typeof dt.value === 'number' && dt.value <= 25) && !typeNames.has(dt.toString())) unknownTypes.add(dt.toString());
    });
    if (unknownTypes.size > 0) {
      const ids = [...unknownTypes];
      const names = await session.read(ids.map((nodeId) => ({ nodeId, attributeId: A.BrowseName })));
      ids.forEach((id, k) => typeNames.set(id, (names[k]!.value?.value as { name?: string } | null)?.name ?? id));
    }
    chunk.forEach((p, k) => {
      const dtValue = values[k * 3]!.value?.value as { namespace: number; value: unknown; toString(): string } | null;
      const dataType = !dtValue
        ? 'unknown'
        : dtValue.namespace === 0 && typeof dtValue.value === 'number' && dtValue.value <= 25
          ? (BUILTIN_NAMES[dtValue.value] ?? dtValue.toString())
          : (typeNames.get(dtValue.toString()) ?? dtValue.toString());
      const valueRank = Number(values[k * 3 + 1]!.value?.value ?? -1);
      const dv = values[k * 3 + 2]!;
      const variant = dv.value;
      const nodeIdParts = splitNodeId(p.nodeId);
      const v: BrowsedVariable = {
        nodeId: p.nodeId,
        stableNodeId: formatStable(nodeIdParts.index, nodeIdParts.type, nodeIdParts.identifier, namespaceArray),
        path: p.path,
        dataType,
        valueRank,
        statusName: dv.statusCode.name,
        supported: false,
      };
      const isArray = valueRank >= 0 || (variant && variant.arrayType !== opcua.VariantArrayType.Scalar);
      if (isArray) {
        const length = (variant?.value as { length?: number } | null)?.length;
        if (length !== undefined) v.arrayLength = length;
        v.note = `array${length !== undefined ? ` of ${length}` : ''} ${dataType}: add arrayIndex to read one element`;
      } else if (variant && variant.dataType !== opcua.DataType.Null) {
        const value = toTagValue(variant.dataType, variant.value);
        if (value === undefined) v.note = `${BUILTIN_NAMES[variant.dataType] ?? dataType} values are not supported`;
        else {
          v.value = value;
          v.supported = true;
        }
      } else {
        // No value to look at: judge by the declared type.
        v.supported = BUILTIN_NAMES.indexOf(dataType) > 0 && toTagValue(BUILTIN_NAMES.indexOf(dataType), sampleOf(dataType)) !== undefined;
        if (!v.supported) v.note = `${dataType} values are not supported`;
      }
      out.push(v);
    });
  }
  return out;
}

/** `ns=2;s=A.B` → parts (node-opcua's NodeId#toString form). */
function splitNodeId(text: string): { index: number; type: 'i' | 's' | 'g' | 'b'; identifier: string } {
  const m = /^(?:ns=(\d+);)?([isgb])=(.*)$/s.exec(text);
  if (!m) return { index: 0, type: 's', identifier: text };
  return { index: Number(m[1] ?? 0), type: m[2] as 'i' | 's' | 'g' | 'b', identifier: m[3]! };
}

/** A representative raw value of a built-in type, to ask toTagValue whether the type is carried. */
function sampleOf(dataType: string): unknown {
  if (dataType === 'Int64' || dataType === 'UInt64') return [0, 0];
  if (dataType === 'DateTime') return new Date(0);
  if (dataType === 'LocalizedText') return { text: '' };
  if (dataType === 'QualifiedName') return { name: '' };
  if (dataType === 'StatusCode') return { value: 0 };
  return 0;
}
