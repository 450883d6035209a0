import { describe, expect, it } from 'vitest';
import { JsonDecoder, parseTimestamp } from '../../../src/connectors/mqtt/json-decoder.js';
import { sourceConfig } from '../../fixtures/mqtt/config-with-defaults.js';

const ARRIVAL = 1_714_564_800_000;
const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('JsonDecoder', () => {
  it('reads several values by JSON pointer and names tags from topic levels', () => {
    const cfg = sourceConfig({
      topics: ['plant/+/+/telemetry'],
      values: [
        { tag: '{2}.{3}.rms', pointer: '/vib/rms' },
        { tag: '{2}.{3}.peak', pointer: '/vib/peak' },
        { tag: '{2}.running', pointer: '/state/0' },
        { tag: '{2}.mode', pointer: '/a~1b' },
      ],
    });
    const d = new JsonDecoder(cfg, 'mqtt-source/src');
    const r = d.decode('plant/press1/axis-x/telemetry', buf({ vib: { rms: 0.42, peak: 1.5 }, state: [true], 'a/b': 'auto' }), ARRIVAL);
    expect(r.problems).toEqual([]);
    expect(r.samples).toEqual([
      { tag: 'press1.axis-x.rms', value: 0.42, ts: ARRIVAL, quality: 'good', source: 'mqtt-source/src' },
      { tag: 'press1.axis-x.peak', value: 1.5, ts: ARRIVAL, quality: 'good', source: 'mqtt-source/src' },
      { tag: 'press1.running', value: true, ts: ARRIVAL, quality: 'good', source: 'mqtt-source/src' },
      { tag: 'press1.mode', value: 'auto', ts: ARRIVAL, quality: 'good', source: 'mqtt-source/src' },
    ]);
  });

  it('takes a plain-number payload with the empty pointer, and {topic}', () => {
    const d = new JsonDecoder(sourceConfig({ topics: ['sensors/#'], values: [{ tag: '{topic}' }] }), 's');
    expect(d.decode('sensors/t1', buf(' 21.5\n'), ARRIVAL).samples).toMatchObject([{ tag: 'sensors/t1', value: 21.5, ts: ARRIVAL }]);
    expect(d.decode('sensors/t1', buf('-3e2'), ARRIVAL).samples[0]!.value).toBe(-300);
  });

  it.each([
    ['epoch_ms', 1_714_564_801_250, 1_714_564_801_250],
    ['epoch_ms', '1714564801250', 1_714_564_801_250],
    ['epoch_s', 1_714_564_801.25, 1_714_564_801_250],
    ['iso8601', '2024-05-01T12:00:01.250Z', 1_714_564_801_250],
    ['iso8601', '2024-05-01T14:00:01.250+02:00', 1_714_564_801_250],
  ] as const)('uses the device timestamp (%s %s)', (format, raw, expected) => {
    const d = new JsonDecoder(sourceConfig({ topics: ['t'], values: [{ tag: 'x', pointer: '/v' }], timestamp: { pointer: '/ts', format } }), 's');
    const r = d.decode('t', buf({ v: 1, ts: raw }), ARRIVAL);
    expect(r.problems).toEqual([]);
    expect(r.samples[0]!.ts).toBe(expected);
  });

  it('drops the whole message on a missing or invalid timestamp', () => {
    const d = new JsonDecoder(
      sourceConfig({ topics: ['t'], values: [{ tag: 'x', pointer: '/v' }], timestamp: { pointer: '/ts', format: 'iso8601' } }), 's',
    );
    for (const body of [{ v: 1 }, { v: 1, ts: 'yesterday' }, { v: 1, ts: 12 }, { v: 1, ts: null }]) {
      const r = d.decode('t', buf(body), ARRIVAL);
      expect(r.samples).toEqual([]);
      expect(r.problems).toMatchObject([{ reason: 'bad_timestamp', scope: 'message' }]);
    }
  });

  it('keeps the good values of a message and reports each bad one', () => {
    const d = new JsonDecoder(
      sourceConfig({
        topics: ['t/+'],
        values: [
          { tag: 'good', pointer: '/a' },
          { tag: 'missing', pointer: '/nope' },
          { tag: 'object', pointer: '/o' },
          { tag: 'null', pointer: '/n' },
          { tag: 'lvl.{3}', pointer: '/a' },
        ],
      }),
      's',
    );
    const r = d.decode('t/1', buf({ a: 5, o: { x: 1 }, n: null }), ARRIVAL);
    expect(r.samples.map((s) => s.tag)).toEqual(['good']);
    expect(r.problems.map((p) => [p.reason, p.scope])).toEqual([
      ['missing_field', 'value'], ['wrong_type', 'value'], ['wrong_type', 'value'], ['bad_topic', 'value'],
    ]);
  });

  it('reports payloads that are not JSON and never throws on garbage', () => {
    const d = new JsonDecoder(sourceConfig({ topics: ['t'], values: [{ tag: 'x' }] }), 's');
    const garbage = [Buffer.from('{"a":'), Buffer.from([0xff, 0xfe, 0x00, 0x01]), Buffer.alloc(0), Buffer.from('NaN'), Buffer.from('ON')];
    for (const payload of garbage) {
      const r = d.decode('t', payload, ARRIVAL);
      expect(r.samples).toEqual([]);
      expect(r.problems[0]!.reason).toBe('not_json');
    }
  });

  it('coerces values by the configured type', () => {
    const d = new JsonDecoder(
      sourceConfig({
        topics: ['t'],
        values: [
          { tag: 'n1', pointer: '/s', type: 'number' },
          { tag: 'n2', pointer: '/b', type: 'number' },
          { tag: 'b1', pointer: '/one', type: 'boolean' },
          { tag: 's1', pointer: '/num', type: 'string' },
          { tag: 'bad', pointer: '/word', type: 'number' },
        ],
      }),
      's',
    );
    const r = d.decode('t', buf({ s: ' 12.5 ', b: true, one: 1, num: 7, word: 'high' }), ARRIVAL);
    expect(r.samples.map((s) => [s.tag, s.value])).toEqual([['n1', 12.5], ['n2', 1], ['b1', true], ['s1', '7']]);
    expect(r.problems).toMatchObject([{ reason: 'wrong_type' }]);
  });
});

describe('parseTimestamp', () => {
  it('refuses times a Date cannot hold and negative times', () => {
    expect(parseTimestamp(-1, 'epoch_ms')).toBeUndefined();
    expect(parseTimestamp(1e16, 'epoch_ms')).toBeUndefined();
    expect(parseTimestamp('', 'epoch_s')).toBeUndefined();
    expect(parseTimestamp(true, 'epoch_ms')).toBeUndefined();
  });
});
