import { describe, expect, it } from 'vitest';
import { BuiltinType, isConfigStatus, mapDataValue, toTagValue, type DataValueLike } from '../../../src/connectors/opcua/value-mapping.js';

const GOOD = { value: 0, name: 'Good' };
const dv = (dataType: number, value: unknown, extra: Partial<DataValueLike> = {}, arrayType = 0): DataValueLike => ({
  value: { dataType, arrayType, value }, statusCode: GOOD, sourceTimestamp: new Date(1000), serverTimestamp: new Date(2000), ...extra,
});

describe('mapDataValue', () => {
  it('keeps the source timestamp, falling back to the server timestamp, then the arrival time', () => {
    expect(mapDataValue(dv(BuiltinType.Double, 1.5), false, 9)).toMatchObject({ kind: 'sample', value: 1.5, ts: 1000, quality: 'good' });
    expect(mapDataValue(dv(BuiltinType.Double, 1.5, { sourceTimestamp: null }), false, 9)).toMatchObject({ ts: 2000 });
    expect(mapDataValue(dv(BuiltinType.Double, 1.5, { sourceTimestamp: null, serverTimestamp: null }), false, 9)).toMatchObject({ ts: 9 });
  });

  it('takes the OPC UA null DateTime (0 on the wire, decoded as 1601-01-01) and invalid dates as no timestamp', () => {
    const opcuaNull = new Date(Date.UTC(1601, 0, 1));
    expect(mapDataValue(dv(BuiltinType.Double, 1.5, { sourceTimestamp: opcuaNull }), false, 9)).toMatchObject({ ts: 2000 });
    expect(mapDataValue(dv(BuiltinType.Double, 1.5, { sourceTimestamp: opcuaNull, serverTimestamp: opcuaNull }), false, 9)).toMatchObject({ ts: 9 });
    expect(mapDataValue(dv(BuiltinType.Double, 1.5, { sourceTimestamp: new Date(Number.NaN) }), false, 9)).toMatchObject({ ts: 2000 });
  });

  it('maps the StatusCode severity to the quality and keeps the name', () => {
    const bad = mapDataValue(dv(BuiltinType.Double, 0, { statusCode: { value: 0x808c0000, name: 'BadSensorFailure' } }), false, 0);
    expect(bad).toMatchObject({ kind: 'sample', quality: 'bad', statusName: 'BadSensorFailure', statusCode: 0x808c0000 });
    const uncertain = mapDataValue(dv(BuiltinType.Double, 3, { statusCode: { value: 0x408f0000, name: 'UncertainEngineeringUnitsExceeded' } }), false, 0);
    expect(uncertain).toMatchObject({ quality: 'uncertain', value: 3 });
  });

  it('publishes a bad status without a value as NaN, and skips a Good null', () => {
    const m = mapDataValue({ value: null, statusCode: { value: 0x80320000, name: 'BadNoCommunication' } }, false, 5);
    expect(m.kind === 'sample' && Number.isNaN(m.value)).toBe(true);
    expect(mapDataValue(dv(BuiltinType.Null, null), false, 0)).toEqual({ kind: 'empty' });
  });

  it('turns configuration statuses into a tag degradation, not a sample', () => {
    expect(mapDataValue({ value: null, statusCode: { value: 0x80340000, name: 'BadNodeIdUnknown' } }, false, 0))
      .toEqual({ kind: 'config-error', reason: 'BadNodeIdUnknown', statusName: 'BadNodeIdUnknown' });
    expect(isConfigStatus('BadIndexRangeNoData')).toBe(true);
    expect(isConfigStatus('BadSensorFailure')).toBe(false);
  });

  it('flags the overflow bit', () => {
    expect(mapDataValue(dv(BuiltinType.Double, 1, { statusCode: { value: 0x480, name: 'Good#Overflow' } }), false, 0)).toMatchObject({ overflow: true, quality: 'good' });
    expect(mapDataValue(dv(BuiltinType.Double, 1), false, 0)).toMatchObject({ overflow: false });
  });

  it('reads the element of an indexed array and refuses other arrays, matrices and unsupported types', () => {
    expect(mapDataValue(dv(BuiltinType.Double, Float64Array.from([4.5]), {}, 1), true, 0)).toMatchObject({ kind: 'sample', value: 4.5 });
    expect(mapDataValue(dv(BuiltinType.Double, [1, 2, 3], {}, 1), false, 0)).toEqual({ kind: 'unsupported', reason: 'the variable is an array (3 elements): set arrayIndex to the element to read' });
    expect(mapDataValue(dv(BuiltinType.Double, [[1]], {}, 2), true, 0)).toMatchObject({ kind: 'unsupported', reason: 'the variable is a matrix: not supported' });
    expect(mapDataValue(dv(BuiltinType.ExtensionObject, {}), false, 0)).toMatchObject({ kind: 'unsupported', reason: expect.stringContaining('ExtensionObject') });
  });
});

describe('toTagValue', () => {
  it('converts every carried built-in type', () => {
    expect(toTagValue(BuiltinType.Boolean, true)).toBe(true);
    expect(toTagValue(BuiltinType.SByte, -3)).toBe(-3);
    expect(toTagValue(BuiltinType.UInt32, 4_000_000_000)).toBe(4_000_000_000);
    expect(toTagValue(BuiltinType.Float, 1.5)).toBe(1.5);
    expect(toTagValue(BuiltinType.Int64, [0xffffffff, 0xfffffffb])).toBe(-5);
    expect(toTagValue(BuiltinType.Int64, [1, 5])).toBe(4294967301);
    expect(toTagValue(BuiltinType.UInt64, [0xffffffff, 0])).toBe(0xffffffff * 4294967296);
    expect(toTagValue(BuiltinType.String, 'x')).toBe('x');
    expect(toTagValue(BuiltinType.DateTime, new Date(1234))).toBe(1234);
    expect(toTagValue(BuiltinType.LocalizedText, { text: 'Hallo', locale: 'de' })).toBe('Hallo');
    expect(toTagValue(BuiltinType.StatusCode, { value: 0x80000000 })).toBe(0x80000000);
    expect(toTagValue(BuiltinType.ByteString, Buffer.from('x'))).toBeUndefined();
  });
});
