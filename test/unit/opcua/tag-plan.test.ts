import { describe, expect, it } from 'vitest';
import type { OpcuaTagConfig } from '../../../src/connectors/opcua/config.js';
import { bucketize, parseTags, pollGroups, resolveTags } from '../../../src/connectors/opcua/tag-plan.js';

const tag = (i: number, extra: Partial<OpcuaTagConfig> = {}): OpcuaTagConfig => ({
  tag: `t${i}`, nodeId: `nsu=urn:plc;s=V${i}`, mode: 'subscribe', samplingIntervalMs: 100, queueSize: 10, ...extra,
});

describe('tag plan', () => {
  it('resolves node ids per session and reports each failure for its own tag', () => {
    const tags = [tag(0), tag(1, { nodeId: 'nsu=urn:gone;s=X' }), tag(2, { nodeId: 'ns=1;i=5', arrayIndex: 3 })];
    const r = resolveTags([0, 1, 2], tags, parseTags(tags), ['http://opcfoundation.org/UA/', 'urn:plc']);
    expect(r.resolved).toEqual([{ index: 0, nodeId: 'ns=1;s=V0' }, { index: 2, nodeId: 'ns=1;i=5', indexRange: '3' }]);
    expect(r.failed).toEqual([{ index: 1, reason: expect.stringContaining('"urn:gone" is not on the server') }]);
  });

  it('groups items by requested parameters and cuts them into chunks', () => {
    const tags = Array.from({ length: 2500 }, (_, i) => tag(i, i % 2 === 0 ? {} : { deadband: { type: 'absolute', value: 0.5 } }));
    const resolved = tags.map((_, index) => ({ index, nodeId: `ns=1;s=V${index}` }));
    const buckets = bucketize(resolved, tags, 1000);
    expect(buckets.map((b) => b.items.length)).toEqual([1000, 250, 1000, 250]);
    expect(buckets[0]!.deadband).toBeUndefined();
    expect(buckets[2]!.deadband).toEqual({ type: 'absolute', value: 0.5 });
    expect(new Set(buckets.flatMap((b) => b.items.map((i) => i.index))).size).toBe(2500);
  });

  it('groups polled tags by period', () => {
    const tags = [tag(0, { mode: 'poll', pollIntervalMs: 500 }), tag(1, { mode: 'poll', pollIntervalMs: 100 }), tag(2, { mode: 'poll', pollIntervalMs: 500 })];
    const groups = pollGroups(tags.map((_, index) => ({ index, nodeId: 'x' })), tags);
    expect([...groups.entries()].map(([p, items]) => [p, items.map((i) => i.index)])).toEqual([[500, [0, 2]], [100, [1]]]);
  });
});
