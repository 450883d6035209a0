import { describe, expect, it } from 'vitest';
import { mapDataValue, BuiltinType } from '../../../src/connectors/opcua/value-mapping.js';
import { RECENT_CONNECT_TIMEOUT_MS, RECENT_MAX_DELAY_MS, RECENTLY_HEALTHY_MS, ReconnectDelay } from '../../../src/connectors/opcua/reconnect-delay.js';

describe('ReconnectDelay', () => {
  const options = { initialDelayMs: 1000, maxDelayMs: 60_000 };

  it('never healthy: exponential backoff up to maxDelayMs', () => {
    const d = new ReconnectDelay(options, () => 0, () => 1);
    expect(Array.from({ length: 8 }, () => d.next())).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  });

  it('a successful connect resets the backoff, and while recently healthy the delay stays at most 2 s', () => {
    let now = 0;
    const d = new ReconnectDelay(options, () => now, () => 1);
    for (let i = 0; i < 6; i++) d.next();
    d.connected();
    now = 500;
    d.lost();
    expect(Array.from({ length: 6 }, () => d.next())).toEqual([1000, RECENT_MAX_DELAY_MS, 2000, 2000, 2000, 2000]);
    // Down for minutes: the delay grows again towards maxDelayMs.
    now = 500 + RECENTLY_HEALTHY_MS;
    expect(d.next()).toBe(60_000);
    // A session that lasted a moment still resets: the next loss starts at the first delay (no 10 s rule).
    d.connected();
    now += 100;
    d.lost();
    expect(d.next()).toBe(1000);
  });

  it('while recently healthy a connect attempt gets a short timeout, doubled after each timeout, up to the full one', () => {
    let now = 0;
    const d = new ReconnectDelay(options, () => now, () => 1);
    expect(d.connectTimeout(30_000)).toBe(30_000);
    d.connected();
    d.lost();
    expect(d.connectTimeout(30_000)).toBe(RECENT_CONNECT_TIMEOUT_MS);
    d.timedOut();
    expect(d.connectTimeout(30_000)).toBe(2 * RECENT_CONNECT_TIMEOUT_MS);
    for (let i = 0; i < 40; i++) d.timedOut();
    expect(d.connectTimeout(30_000)).toBe(30_000);
    d.connected();
    expect(d.connectTimeout(30_000)).toBe(RECENT_CONNECT_TIMEOUT_MS);
    now = RECENTLY_HEALTHY_MS;
    expect(d.connectTimeout(30_000)).toBe(30_000);
  });

  it('keeps full jitter and the lower bound', () => {
    const d = new ReconnectDelay(options, () => 0, () => 0);
    d.connected();
    expect(d.next()).toBe(500);
  });
});

describe('mapDataValue never throws', () => {
  const good = { value: 0, name: 'Good' };
  it('a DateTime array whose element is null is empty (good) or a bad sample, not an exception', () => {
    const dv = { value: { dataType: BuiltinType.DateTime, arrayType: 1, value: [null] }, statusCode: good };
    expect(mapDataValue(dv, true, 1000)).toEqual({ kind: 'empty' });
    const bad = { ...dv, statusCode: { value: 0x808d0000, name: 'BadSensorFailure' } };
    expect(mapDataValue(bad, true, 1000)).toMatchObject({ kind: 'sample', quality: 'bad', statusName: 'BadSensorFailure' });
  });

  it('a value whose shape does not fit its DataType is unsupported', () => {
    const dv = { value: { dataType: BuiltinType.DateTime, arrayType: 0, value: 'not a date' }, statusCode: good };
    expect(mapDataValue(dv, false, 1000)).toMatchObject({ kind: 'unsupported' });
    const words = { value: { dataType: BuiltinType.UInt64, arrayType: 0, value: null as unknown }, statusCode: good };
    expect(mapDataValue(words, false, 1000)).toEqual({ kind: 'empty' });
  });
});
