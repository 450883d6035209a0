import { describe, expect, it } from 'vitest';
import { SparkplugDecoder } from '../../../src/connectors/mqtt/sparkplug-decoder.js';
import { EdgeNode, type BirthMetric, type Message } from '../../fixtures/mqtt/sparkplug-edge-node.js';

const T0 = 1_714_564_800_000;
const NODE_METRICS: BirthMetric[] = [
  { name: 'Temperature', alias: 1, type: 'Double', value: 21.5 },
  { name: 'Running', alias: 2, type: 'Boolean', value: true },
  { name: 'Mode', alias: 3, type: 'String', value: 'auto' },
  { name: 'Offset', alias: 4, type: 'Int16', value: -300 },
  { name: 'Count', alias: 5, type: 'Int64', value: -5 },
  { name: 'Total', alias: 6, type: 'UInt64', value: 12_345_678_901 },
];

function decoder(reorderTimeoutMs = 2000): SparkplugDecoder {
  return new SparkplugDecoder({ source: 'mqtt-source/sp', tagPrefix: '', reorderTimeoutMs });
}
const handle = (d: SparkplugDecoder, m: Message, now = T0) => d.handle(m.topic, m.payload, now);

describe('SparkplugDecoder', () => {
  it('turns NBIRTH metrics into samples and skips bdSeq and Node Control', () => {
    const d = decoder();
    const r = handle(d, new EdgeNode('plant', 'edge1').nbirth(NODE_METRICS, T0));
    expect(r.problems).toEqual([]);
    expect(r.events).toEqual(['node_birth']);
    expect(r.samples.map((s) => [s.tag, s.value, s.ts])).toEqual([
      ['plant.edge1.Temperature', 21.5, T0],
      ['plant.edge1.Running', true, T0],
      ['plant.edge1.Mode', 'auto', T0],
      ['plant.edge1.Offset', -300, T0],
      ['plant.edge1.Count', -5, T0],
      ['plant.edge1.Total', 12_345_678_901, T0],
    ]);
    expect(r.samples.every((s) => s.quality === 'good' && s.source === 'mqtt-source/sp')).toBe(true);
  });

  it('resolves NDATA aliases (without datatype) through the birth, with signed integers and metric timestamps', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth(NODE_METRICS, T0));
    const r = handle(d, edge.data(undefined, [
      { alias: 1, field: { doubleValue: 22.25 }, ts: T0 + 10 },
      { alias: 4, field: { intValue: 0xffff_ff00 }, ts: T0 + 11 },
      { alias: 5, field: { longValue: 7 }, ts: T0 + 12 },
    ], T0 + 20));
    expect(r.problems).toEqual([]);
    expect(r.samples.map((s) => [s.tag, s.value, s.ts])).toEqual([
      ['plant.edge1.Temperature', 22.25, T0 + 10],
      ['plant.edge1.Offset', -256, T0 + 11],
      ['plant.edge1.Count', 7, T0 + 12],
    ]);
  });

  it('names device metrics <group>.<node>.<device>.<metric>, with a prefix', () => {
    const d = new SparkplugDecoder({ source: 's', tagPrefix: 'site1.', reorderTimeoutMs: 2000 });
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth([], T0));
    handle(d, edge.dbirth('press1', [{ name: 'Axis/Torque', alias: 10, type: 'Float', value: 1.5 }], T0));
    const r = handle(d, edge.data('press1', [{ alias: 10, field: { floatValue: 2.5 } }], T0 + 1));
    expect(r.samples.map((s) => [s.tag, s.value])).toEqual([['site1.plant.edge1.press1.Axis/Torque', 2.5]]);
  });

  it('drops data before its birth and asks for a rebirth', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge9');
    const r = handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }]));
    expect(r.samples).toEqual([]);
    expect(r.problems).toMatchObject([{ reason: 'no_birth', scope: 'message' }]);
    expect(r.rebirth).toMatchObject({ group: 'plant', node: 'edge9' });

    handle(d, edge.nbirth(NODE_METRICS));
    const dd = handle(d, edge.data('dev1', [{ alias: 1, field: { doubleValue: 1 } }]));
    expect(dd.problems).toMatchObject([{ reason: 'no_birth' }]);
    expect(dd.rebirth).toMatchObject({ node: 'edge9' });
  });

  it('drops an alias the birth did not declare and asks for a rebirth', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth(NODE_METRICS));
    const r = handle(d, edge.data(undefined, [{ alias: 99, field: { doubleValue: 1 } }, { alias: 1, field: { doubleValue: 3 } }]));
    expect(r.samples.map((s) => s.value)).toEqual([3]);
    expect(r.problems).toMatchObject([{ reason: 'unknown_alias', scope: 'value' }]);
    expect(r.rebirth).toBeDefined();
  });

  it('forgets a node on its NDEATH, but not on the stale will of an earlier session', () => {
    const d = decoder();
    const old = new EdgeNode('plant', 'edge1', 4);
    const edge = new EdgeNode('plant', 'edge1', 5);
    handle(d, edge.nbirth(NODE_METRICS));
    expect(handle(d, old.ndeath()).events).toEqual(['stale_death']);
    expect(handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }])).samples).toHaveLength(1);
    expect(handle(d, edge.ndeath()).events).toEqual(['node_death']);
    expect(d.online()).toEqual([]);
    expect(handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }])).problems[0]!.reason).toBe('no_birth');
  });

  it('forgets a device on its DDEATH', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth([]));
    handle(d, edge.dbirth('dev', [{ name: 'x', alias: 1, type: 'Double', value: 1 }]));
    expect(d.online()).toEqual([{ node: 'plant/edge1', devices: ['dev'] }]);
    expect(handle(d, edge.ddeath('dev')).events).toEqual(['device_death']);
    expect(handle(d, edge.data('dev', [{ alias: 1, field: { doubleValue: 2 } }])).problems[0]!.reason).toBe('no_birth');
  });

  it('ingests out-of-order data, and asks for a rebirth only when a gap outlives the reorder timeout', () => {
    const d = decoder(1000);
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth(NODE_METRICS)); // seq 0
    const m1 = edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }]); // seq 1
    const m2 = edge.data(undefined, [{ alias: 1, field: { doubleValue: 2 } }]); // seq 2
    const r2 = handle(d, m2, T0);
    expect(r2.events).toEqual(['seq_gap']);
    expect(r2.samples).toHaveLength(1);
    expect(handle(d, m1, T0 + 500).samples).toHaveLength(1);
    expect(d.expireReorder(T0 + 5000)).toEqual([]);

    edge.data(undefined, [{ alias: 1, field: { doubleValue: 3 } }]); // seq 3 lost
    handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 4 } }]), T0 + 6000); // seq 4
    expect(d.expireReorder(T0 + 6500)).toEqual([]);
    expect(d.expireReorder(T0 + 7000)).toEqual([{ group: 'plant', node: 'edge1' }]);
    expect(d.expireReorder(T0 + 9000)).toEqual([]);
  });

  it('with a reorder timeout of 0 a gap asks for a rebirth at once; a duplicate is not a gap', () => {
    const d = decoder(0);
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth(NODE_METRICS));
    const m1 = edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }]);
    handle(d, m1);
    expect(handle(d, m1).events).toEqual([]);
    edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }]);
    expect(handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 1 } }])).rebirth).toBeDefined();
  });

  it('ingests data whose seq is outside 0..255 without hanging, and keeps tracking the valid sequence', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth(NODE_METRICS)); // seq 0
    // seq 300 once made the gap bookkeeping count from the expected seq up to 300 modulo 256, forever.
    const odd = handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 5 } }], T0 + 1, 300));
    expect(odd.samples.map((s) => s.value)).toEqual([5]);
    expect(odd.events).toEqual([]);
    const huge = handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 6 } }], T0 + 2, 2 ** 40 + 3));
    expect(huge.samples.map((s) => s.value)).toEqual([6]);
    edge.seq = 1;
    const next = handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 7 } }], T0 + 3)); // seq 1: in order
    expect(next.events).toEqual([]);
    expect(d.expireReorder(T0 + 60_000)).toEqual([]);
  });

  it('takes an unset or impossible timestamp as absent: metric, then payload timestamp, then arrival time', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    handle(d, edge.nbirth(NODE_METRICS, T0));
    const r = handle(d, edge.data(undefined, [
      { alias: 1, field: { doubleValue: 1 }, ts: 2 ** 60 },
      { alias: 1, field: { doubleValue: 2 }, ts: 0 },
      { alias: 1, field: { doubleValue: 3 }, ts: T0 + 5 },
    ], T0 + 10));
    expect(r.samples.map((s) => [s.value, s.ts])).toEqual([[1, T0 + 10], [2, T0 + 10], [3, T0 + 5]]);
    const arrival = handle(d, edge.data(undefined, [{ alias: 1, field: { doubleValue: 4 }, ts: 2 ** 60 }], 2 ** 60), T0 + 20);
    expect(arrival.samples.map((s) => s.ts)).toEqual([T0 + 20]);
  });

  it('reports garbage and wrong topics without throwing, and ignores STATE and commands', () => {
    const d = decoder();
    expect(d.handle('spBv1.0/plant/NDATA/edge1', Buffer.from('{"not":"protobuf"}'), T0).problems[0]!.reason).toBe('decode_error');
    expect(d.handle('spBv1.0/plant/NDATA', Buffer.alloc(0), T0).problems[0]!.reason).toBe('decode_error');
    expect(d.handle('plant/edge1', Buffer.alloc(0), T0).problems[0]!.reason).toBe('decode_error');
    expect(d.handle('spBv1.0/STATE/host1', Buffer.from('{"online":true}'), T0)).toMatchObject({ problems: [], events: ['ignored'] });
    expect(d.handle('spBv1.0/plant/NCMD/edge1', Buffer.alloc(3), T0)).toMatchObject({ problems: [], events: ['ignored'] });
  });

  it('makes null metrics bad-quality samples and drops unsupported ones by reason', () => {
    const d = decoder();
    const edge = new EdgeNode('plant', 'edge1');
    const r = handle(d, edge.nbirth([
      { name: 'Nothing', alias: 1, type: 'Double', value: null },
      { name: 'Blob', alias: 2, type: 'Bytes', value: new Uint8Array([1, 2]) },
      { name: 'Ok', alias: 3, type: 'Double', value: 1 },
    ]));
    expect(r.samples.map((s) => [s.tag, s.quality])).toEqual([['plant.edge1.Nothing', 'bad'], ['plant.edge1.Ok', 'good']]);
    expect(r.problems.map((p) => p.reason)).toEqual(['unsupported_type']);
  });
});
