import { qualityOfStatusCode, type Quality, type TagValue } from '../../core/tag-sample.js';

/**
 * OPC UA DataValue → gateway value. Works on the plain shape of node-opcua's DataValue (no import of node-opcua),
 * so it is unit-tested without a server. Runs once per notification: keep it branch-light.
 */

/** The parts of node-opcua's DataValue this mapping reads. */
export interface DataValueLike {
  value?: { dataType: number; arrayType: number; value: unknown } | null;
  statusCode: { value: number; name: string };
  sourceTimestamp?: Date | null;
  serverTimestamp?: Date | null;
}

export type Mapped =
  | { kind: 'sample'; value: TagValue; quality: Quality; statusCode: number; statusName: string; ts: number; overflow: boolean }
  /** The node cannot be read as configured (unknown node, index range, access): the tag is degraded, no sample. */
  | { kind: 'config-error'; reason: string; statusName: string }
  /** The value has a shape the gateway does not carry (array without arrayIndex, structure, ByteString). */
  | { kind: 'unsupported'; reason: string }
  /** A Good value without content (Null variant): nothing to record. */
  | { kind: 'empty' };

/** OPC UA built-in DataType ids (Part 6, 5.1.2). */
export const BuiltinType = {
  Null: 0, Boolean: 1, SByte: 2, Byte: 3, Int16: 4, UInt16: 5, Int32: 6, UInt32: 7, Int64: 8, UInt64: 9, Float: 10, Double: 11,
  String: 12, DateTime: 13, Guid: 14, ByteString: 15, XmlElement: 16, NodeId: 17, ExpandedNodeId: 18, StatusCode: 19,
  QualifiedName: 20, LocalizedText: 21, ExtensionObject: 22, DataValue: 23, Variant: 24, DiagnosticInfo: 25,
} as const;

export const BUILTIN_NAMES: readonly string[] = Object.keys(BuiltinType);

/** Status codes that mean "this tag is configured wrong or the node is gone", not "the process value is bad". */
const CONFIG_STATUSES = new Set([
  'BadNodeIdUnknown', 'BadNodeIdInvalid', 'BadAttributeIdInvalid', 'BadIndexRangeInvalid', 'BadIndexRangeNoData',
  'BadNotReadable', 'BadUserAccessDenied', 'BadDataEncodingInvalid', 'BadDataEncodingUnsupported', 'BadNotSupported',
  'BadMonitoredItemFilterUnsupported', 'BadFilterNotAllowed', 'BadDeadbandFilterInvalid', 'BadNodeClassInvalid',
]);

/** True for status names that degrade the tag instead of producing a bad-quality sample. */
export function isConfigStatus(statusName: string): boolean {
  return CONFIG_STATUSES.has(baseName(statusName));
}

/** `Good#Overflow` → `Good`. */
function baseName(statusName: string): string {
  const hash = statusName.indexOf('#');
  return hash < 0 ? statusName : statusName.slice(0, hash);
}

const TWO_32 = 4294967296;
/** 1601-01-01T00:00:00Z: the DateTime a 0 on the wire decodes to. */
const OPCUA_NULL_TIME = Date.UTC(1601, 0, 1);

/**
 * A timestamp, or undefined when the server sent none. OPC UA encodes "no time" as 0 (Part 6, 5.2.2.5), which
 * node-opcua decodes as 1601-01-01; PLCs without a clock send that as the source timestamp. Taken as a time, every
 * value would be 400 years old: the oldest in every window, and the first to go at retention.
 */
function timeOf(date: Date | null | undefined): number | undefined {
  if (!date) return undefined;
  const t = date.getTime();
  return t > OPCUA_NULL_TIME ? t : undefined;
}

/**
 * Maps one DataValue. `indexed` says the tag asked for one array element (arrayIndex → IndexRange), in which case
 * the server answers with a one-element array.
 */
export function mapDataValue(dv: DataValueLike, indexed: boolean, receivedAt: number): Mapped {
  const code = dv.statusCode.value >>> 0;
  const statusName = dv.statusCode.name;
  const quality = qualityOfStatusCode(code);
  if (quality === 'bad' && isConfigStatus(statusName)) return { kind: 'config-error', reason: statusName, statusName };
  const ts = timeOf(dv.sourceTimestamp) ?? timeOf(dv.serverTimestamp) ?? receivedAt;
  // InfoType DataValue (0x400) with the Overflow bit (0x80): the server's queue dropped values (Part 4, 7.34.1).
  const overflow = (code & 0x0480) === 0x0480 || statusName.includes('Overflow');
  const variant = dv.value;
  if (!variant || variant.dataType === BuiltinType.Null || variant.value === null || variant.value === undefined) {
    if (quality === 'good') return { kind: 'empty' };
    return { kind: 'sample', value: Number.NaN, quality, statusCode: code, statusName, ts, overflow };
  }
  let raw: unknown = variant.value;
  if (variant.arrayType !== 0) {
    if (!indexed) {
      const length = (raw as { length?: number }).length ?? 0;
      return { kind: 'unsupported', reason: `the variable is an array (${length} elements): set arrayIndex to the element to read` };
    }
    if (variant.arrayType !== 1) return { kind: 'unsupported', reason: 'the variable is a matrix: not supported' };
    const arr = raw as ArrayLike<unknown>;
    if (arr.length === 0) {
      if (quality === 'good') return { kind: 'empty' };
      return { kind: 'sample', value: Number.NaN, quality, statusCode: code, statusName, ts, overflow };
    }
    raw = arr[0];
    // An array element may be null (a DateTime array with a null entry): no value, like a Null variant.
    if (raw === null || raw === undefined) {
      if (quality === 'good') return { kind: 'empty' };
      return { kind: 'sample', value: Number.NaN, quality, statusCode: code, statusName, ts, overflow };
    }
  }
  let value: TagValue | undefined;
  try {
    value = toTagValue(variant.dataType, raw);
  } catch {
    // A value whose shape does not match its DataType must cost only its own sample, never the rest of the publish
    // response it came in.
    value = undefined;
  }
  if (value === undefined) {
    const typeName = BUILTIN_NAMES[variant.dataType] ?? `DataType ${variant.dataType}`;
    return { kind: 'unsupported', reason: `values of type ${typeName} are not supported: read a numeric, Boolean or String variable (or one of its fields)` };
  }
  return { kind: 'sample', value, quality, statusCode: code, statusName, ts, overflow };
}

/** Scalar conversion by built-in type; undefined for types the gateway does not carry. */
export function toTagValue(dataType: number, raw: unknown): TagValue | undefined {
  switch (dataType) {
    case BuiltinType.Boolean:
      return Boolean(raw);
    case BuiltinType.SByte:
    case BuiltinType.Byte:
    case BuiltinType.Int16:
    case BuiltinType.UInt16:
    case BuiltinType.Int32:
    case BuiltinType.UInt32:
    case BuiltinType.Float:
    case BuiltinType.Double:
      return raw as number;
    case BuiltinType.Int64:
    case BuiltinType.UInt64: {
      // node-opcua carries 64-bit integers as [high, low] 32-bit words; doubles are exact up to 2^53.
      if (typeof raw === 'number') return raw;
      const [high, low] = raw as [number, number];
      const signedHigh = dataType === BuiltinType.Int64 && high >= 0x80000000 ? high - TWO_32 : high;
      return signedHigh * TWO_32 + low;
    }
    case BuiltinType.String:
      return raw as string;
    case BuiltinType.DateTime:
      return (raw as Date).getTime();
    case BuiltinType.StatusCode:
      return ((raw as { value: number }).value ?? 0) >>> 0;
    case BuiltinType.LocalizedText:
      return (raw as { text?: string | null }).text ?? '';
    case BuiltinType.QualifiedName:
      return (raw as { name?: string | null }).name ?? '';
    case BuiltinType.Guid:
      return String(raw);
    case BuiltinType.NodeId:
    case BuiltinType.ExpandedNodeId:
      return String(raw);
    default:
      return undefined;
  }
}
