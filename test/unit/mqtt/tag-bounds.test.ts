import { Writable } from 'node:stream';
import Long from 'long';
import { pino } from 'pino';
import sparkplugProto from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import { describe, expect, it } from 'vitest';
import { RateLimitedLog } from '../../../src/connectors/mqtt/rate-limited-log.js';
import {
  MAX_BIRTH_METRICS, MAX_DEVICES_PER_NODE, MAX_NODE_SESSIONS, SparkplugDecoder,
} from '../../../src/connectors/mqtt/sparkplug-decoder.js';
import { DataType } from '../../../src/connectors/mqtt/sparkplug-values.js';
import { MAX_TAG_NAME_LENGTH, MAX_TAGS_PER_SOURCE, TagAdmission } from '../../../src/connectors/mqtt/tag-admission.js';
import { EdgeNode } from '../../fixtures/mqtt/sparkplug-edge-node.js';

const { Payload } = sparkplugProto.org.eclipse.tahu.protobuf;
const T0 = 1_714_564_800_000;
const decoder = () => new SparkplugDecoder({ source: 's', tagPrefix: '', reorderTimeoutMs: 2000 });

/** A raw NBIRTH (the protobuf class, so any datatype and field can be written). */
function rawBirth(node: string, metrics: Array<Record<string, unknown>>): { topic: string; payload: Buffer } {
  const payload = Payload.encode(Payload.fromObject({ timestamp: T0, seq: 0, metrics })).finish();
  return { topic: `spBv1.0/plant/NBIRTH/${node}`, payload: Buffer.from(payload) };
}

describe('TagAdmission', () => {
  it('admits known tags always, new ones while there is room, and refuses long names', () => {
    const tags = new TagAdmission(3, 10);
    expect(['a', 'b', 'c', 'a'].map((t) => tags.admit(t))).toEqual([undefined, undefined, undefined, undefined]);
    expect(tags.admit('d')).toMatchObject({ reason: 'too_many_tags', scope: 'value' });
    expect(tags.admit('x'.repeat(11))).toMatchObject({ reason: 'tag_name_too_long', scope: 'value' });
    expect(tags.admit('c')).toBeUndefined();
    expect(tags.refused).toBe(2);
    tags.forget(['a']);
    expect(tags.admit('d')).toBeUndefined();
    expect([...tags.known]).toEqual(['b', 'c', 'd']);
  });

  it('defaults fit a big line and refuse the names that were accepted before', () => {
    expect(MAX_TAGS_PER_SOURCE).toBe(20_000);
    expect(MAX_TAG_NAME_LENGTH).toBe(256);
    expect(new TagAdmission().admit('x'.repeat(5006))?.reason).toBe('tag_name_too_long');
  });
});

describe('RateLimitedLog keys are bounded', () => {
  function logWith(maxKeys: number) {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({ write: (c: Buffer, _e, cb) => { lines.push(JSON.parse(c.toString()) as Record<string, unknown>); cb(); } });
    let now = 0;
    const log = new RateLimitedLog(pino(stream), 1000, () => now, maxKeys);
    return { lines, log, at: (t: number) => { now = t; } };
  }

  it('a flood of distinct keys shares one overflow key while every key is live, and old keys are forgotten', () => {
    const { lines, log, at } = logWith(10);
    for (let i = 0; i < 10_000; i++) log.warn(`no-rebirth:plant/node${i}`, { i }, 'lost sync');
    expect(log.size).toBe(11);
    // 10 keys logged, then one line for the overflow key; the rest suppressed.
    expect(lines).toHaveLength(11);
    at(2000);
    for (let i = 10_000; i < 20_000; i++) log.warn(`no-rebirth:plant/node${i}`, { i }, 'lost sync');
    expect(log.size).toBeLessThanOrEqual(11);
    expect(lines.length).toBeLessThan(30);
  });
});

describe('SparkplugDecoder sessions are bounded', () => {
  it(`refuses the NBIRTH of node ${MAX_NODE_SESSIONS + 1}, and takes it once a node died`, () => {
    const d = decoder();
    const edges = Array.from({ length: MAX_NODE_SESSIONS + 1 }, (_, i) => new EdgeNode('plant', `n${i}`));
    for (const edge of edges.slice(0, MAX_NODE_SESSIONS)) {
      const m = edge.nbirth([{ name: 'x', alias: 1, type: 'Double', value: 1 }], T0);
      expect(d.handle(m.topic, m.payload, T0).problems).toEqual([]);
    }
    const last = edges[MAX_NODE_SESSIONS]!;
    const refused = last.nbirth([{ name: 'x', alias: 1, type: 'Double', value: 1 }], T0);
    const r = d.handle(refused.topic, refused.payload, T0);
    expect(r.problems).toMatchObject([{ reason: 'too_many_sessions', scope: 'message' }]);
    expect(r.samples).toEqual([]);
    expect(d.online()).toHaveLength(MAX_NODE_SESSIONS);
    const death = edges[0]!.ndeath();
    expect(d.handle(death.topic, death.payload, T0).stale).toEqual(['plant.n0.x']);
    expect(d.handle(refused.topic, refused.payload, T0).samples.map((s) => s.tag)).toEqual(['plant.n10000.x']);
  });

  it(`refuses DBIRTH of device ${MAX_DEVICES_PER_NODE + 1} of one node`, () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    const birth = edge.nbirth([], T0);
    d.handle(birth.topic, birth.payload, T0);
    const problems: string[] = [];
    for (let i = 0; i <= MAX_DEVICES_PER_NODE; i++) {
      const m = edge.dbirth(`d${i}`, [{ name: 'x', alias: 1, type: 'Double', value: 1 }], T0);
      problems.push(...d.handle(m.topic, m.payload, T0).problems.map((p) => p.reason));
    }
    expect(problems).toEqual(['too_many_sessions']);
    expect(d.online()[0]!.devices).toHaveLength(MAX_DEVICES_PER_NODE);
  });

  it(`keeps at most ${MAX_BIRTH_METRICS} metrics of one birth certificate`, () => {
    const metrics = Array.from({ length: MAX_BIRTH_METRICS + 5 }, (_, i) => ({ name: `m${i}`, alias: i, datatype: DataType.Double, doubleValue: i }));
    const m = rawBirth('big', metrics);
    const r = decoder().handle(m.topic, m.payload, T0);
    expect(r.samples).toHaveLength(MAX_BIRTH_METRICS);
    expect(r.problems).toMatchObject([{ reason: 'too_many_tags', scope: 'value' }]);
  });
});

describe('Sparkplug values', () => {
  it('a null metric is a bad-quality sample, not a vanished value', () => {
    const m = rawBirth('edge1', [
      { name: 'Nothing', alias: 1, datatype: DataType.Double, isNull: true },
      { name: 'Ok', alias: 2, datatype: DataType.Double, doubleValue: 1 },
    ]);
    const r = decoder().handle(m.topic, m.payload, T0);
    expect(r.problems).toEqual([]);
    expect(r.samples.map((s) => [s.tag, Number.isNaN(s.value), s.quality, s.statusName])).toEqual([
      ['plant.edge1.Nothing', true, 'bad', 'BadSparkplugNullValue'],
      ['plant.edge1.Ok', false, 'good', undefined],
    ]);
  });

  it('a UInt64 or Int64 beyond 2^53 is flagged uncertain, never silently rounded to a good value', () => {
    const m = rawBirth('edge1', [
      { name: 'Exact', alias: 1, datatype: DataType.UInt64, longValue: Long.fromString('9007199254740991', true) },
      { name: 'Big', alias: 2, datatype: DataType.UInt64, longValue: Long.fromString('9007199254740993', true) },
      { name: 'Max', alias: 3, datatype: DataType.UInt64, longValue: Long.MAX_UNSIGNED_VALUE },
      { name: 'Neg', alias: 4, datatype: DataType.Int64, longValue: Long.fromString('-9007199254740993', false).toUnsigned() },
    ]);
    const r = decoder().handle(m.topic, m.payload, T0);
    expect(r.samples.map((s) => [s.tag, s.quality, s.statusName])).toEqual([
      ['plant.edge1.Exact', 'good', undefined],
      ['plant.edge1.Big', 'uncertain', 'UncertainInexactInt64'],
      ['plant.edge1.Max', 'uncertain', 'UncertainInexactInt64'],
      ['plant.edge1.Neg', 'uncertain', 'UncertainInexactInt64'],
    ]);
    expect(r.samples[0]!.value).toBe(9007199254740991);
    expect(r.samples[3]!.value).toBeLessThan(-9e15);
  });

  it('Int32 arrays (also empty ones) and other non-scalar types are counted as unsupported_type', () => {
    const int32s = Buffer.alloc(8);
    int32s.writeInt32LE(1, 0);
    int32s.writeInt32LE(-2, 4);
    const m = rawBirth('edge1', [
      { name: 'Arr', alias: 1, datatype: 24, bytesValue: int32s },
      { name: 'Empty', alias: 2, datatype: 24 },
      { name: 'Set', alias: 3, datatype: 16 },
      { name: 'Ok', alias: 4, datatype: DataType.Int32, intValue: 0xffffffff },
    ]);
    const r = decoder().handle(m.topic, m.payload, T0);
    expect(r.problems.map((p) => p.reason)).toEqual(['unsupported_type', 'unsupported_type', 'unsupported_type']);
    expect(r.samples.map((s) => [s.tag, s.value])).toEqual([['plant.edge1.Ok', -1]]);
  });
});
