/**
 * Sparkplug B metric values from the raw protobuf decode (sparkplug-payload's generated Payload class).
 *
 * We read the protobuf ourselves instead of calling sparkplug-payload's `decodePayload` because that function
 * takes the value type from each metric's own `datatype`, which the spec says data messages SHOULD NOT carry
 * (tck-id-payloads-metric-datatype-not-req): their values would decode as null. Here the birth certificate's
 * datatype is used when a data metric has none. It also throws on some valid DataSets, losing the whole message.
 */
import type { TagValue } from '../../core/tag-sample.js';
import type { DropReason } from './ingest-problem.js';

/** Sparkplug B datatypes (spec §6.4.16) that become samples. */
export const DataType = {
  Int8: 1, Int16: 2, Int32: 3, Int64: 4, UInt8: 5, UInt16: 6, UInt32: 7, UInt64: 8,
  Float: 9, Double: 10, Boolean: 11, String: 12, DateTime: 13, Text: 14, UUID: 15,
} as const;

/**
 * Datatypes above Text/UUID (DataSet 16, Bytes 17, File 18, Template 19, PropertySet(List) 20–21 and the arrays
 * 22–34 of Sparkplug 3.0, which travel in bytes_value) are not turned into samples.
 */
const LAST_SCALAR_TYPE = DataType.UUID;

/** protobufjs gives 64-bit fields as `Long` objects when the `long` package is present, as numbers otherwise. */
export interface LongLike {
  toNumber(): number;
  toSigned(): LongLike;
  toUnsigned(): LongLike;
}

export type Int64Field = number | LongLike | null | undefined;

/** The raw metric fields this module reads (a subset of the generated IMetric). */
export interface RawMetric {
  name?: string | null;
  alias?: Int64Field;
  timestamp?: Int64Field;
  datatype?: number | null;
  isNull?: boolean | null;
  isTransient?: boolean | null;
  intValue?: number | null;
  longValue?: Int64Field;
  floatValue?: number | null;
  doubleValue?: number | null;
  booleanValue?: boolean | null;
  stringValue?: string | null;
  /** Name of the field of the `value` oneof that is set. */
  value?: string;
}

/** A 64-bit protobuf field as a JS number (exact up to 2^53), or undefined when absent. */
export function int64(field: Int64Field, signed = false): number | undefined {
  if (field === null || field === undefined) return undefined;
  if (typeof field === 'number') return signed && field >= 2 ** 63 ? field - 2 ** 64 : field;
  return signed ? field.toSigned().toNumber() : field.toUnsigned().toNumber();
}

/**
 * The sample value of a metric given its effective datatype (its own, or its birth's), or the reason it yields
 * none. Integers travel as unsigned protobuf fields; the datatype says how to read the sign back.
 */
export type MetricValue =
  | { value: TagValue; inexact?: true }
  | { reason: DropReason }
  /** is_null: the device says it has no value (the sample is bad quality, never a silent gap). */
  | { null: true };

export function metricValue(m: RawMetric, datatype: number | undefined): MetricValue {
  // By the datatype first: an empty Int32 array has no bytes_value at all and would otherwise look like a wrong type.
  if (datatype !== undefined && datatype > LAST_SCALAR_TYPE) return { reason: 'unsupported_type' };
  if (m.isNull) return { null: true };
  switch (m.value) {
    case 'intValue': {
      const v = m.intValue ?? 0;
      if (datatype === DataType.Int8) return { value: (v << 24) >> 24 };
      if (datatype === DataType.Int16) return { value: (v << 16) >> 16 };
      if (datatype === DataType.Int32) return { value: v | 0 };
      return { value: v >>> 0 };
    }
    case 'longValue': {
      const v = int64(m.longValue, datatype === DataType.Int64);
      if (v === undefined) return { reason: 'wrong_type' };
      // Beyond 2^53 a double cannot hold every integer: the value is the nearest one, and the sample says so.
      return Number.isSafeInteger(v) ? { value: v } : { value: v, inexact: true };
    }
    case 'floatValue':
    case 'doubleValue': {
      const v = m.value === 'floatValue' ? m.floatValue : m.doubleValue;
      return typeof v === 'number' && Number.isFinite(v) ? { value: v } : { reason: 'wrong_type' };
    }
    case 'booleanValue':
      return { value: m.booleanValue === true };
    case 'stringValue':
      return { value: m.stringValue ?? '' };
    case undefined:
      return { reason: 'wrong_type' };
    default:
      // bytesValue, datasetValue, templateValue, extensionValue
      return { reason: 'unsupported_type' };
  }
}
