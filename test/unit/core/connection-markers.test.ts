import { describe, expect, it } from 'vitest';
import { BAD_NO_COMMUNICATION, ConnectionMarkers } from '../../../src/core/connection-markers.js';
import { SourceClocks } from '../../../src/core/source-clock.js';
import { TagBus } from '../../../src/core/tag-bus.js';
import type { TagSample } from '../../../src/core/tag-sample.js';

/** A source behind the real clock stage, whose PLC clock is one hour behind the gateway's. */
function rig() {
  let wall = 1_800_000_000_000;
  const clocks = new SourceClocks(() => wall, () => wall);
  const bus = new TagBus(undefined, clocks.stamp);
  const seen: TagSample[] = [];
  bus.subscribe((b) => seen.push(...b));
  const markers = new ConnectionMarkers(bus, 'opcua/plc', () => wall);
  const deliver = (tag: string, ts: number): TagSample => {
    const s: TagSample = { tag, ts, value: 1, quality: 'good', source: 'opcua/plc' };
    markers.adjust(s);
    bus.publish([s]);
    return s;
  };
  return { clocks, seen, markers, deliver, plcNow: () => wall - 3_600_000, advance: (ms: number) => (wall += ms) };
}

describe('connection-loss markers', () => {
  it('mark each delivered tag BadNoCommunication on the source timeline, and restamp an old first value after the reconnect', () => {
    const r = rig();
    r.deliver('a', r.plcNow() - 10_000); // a value that last changed 10 s ago (report by exception)
    r.deliver('b', r.plcNow());
    r.advance(5000);
    r.markers.lost(['a', 'b', 'never-seen']);
    const marks = r.seen.filter((s) => s.quality === 'bad');
    expect(marks.map((m) => m.tag)).toEqual(['a', 'b']);
    for (const m of marks) {
      expect(m).toMatchObject({ statusCode: BAD_NO_COMMUNICATION, statusName: 'BadNoCommunication' });
      expect(m.ts).toBe(r.plcNow()); // on the PLC's clock, not the gateway's
    }
    r.advance(5000);
    // After the reconnect the server sends a's current value with its old change time: it is current now.
    const first = r.deliver('a', r.plcNow() - 20_000);
    expect(first.ts).toBe(r.plcNow());
    const later = r.deliver('a', r.plcNow() + 1000);
    expect(later.ts).toBe(r.plcNow() + 1000);
    expect(r.clocks.states()[0]!.steps).toBe(0);
  });

  it('a source that never delivered is not marked (no values to hold, no offset to place a mark)', () => {
    const r = rig();
    r.markers.lost(['a', 'b']);
    expect(r.seen).toEqual([]);
    r.deliver('a', r.plcNow() - 60_000);
    expect(r.seen[0]!.ts).toBe(r.plcNow() - 60_000);
    expect(r.clocks.states()[0]!.steps).toBe(0);
  });
});
