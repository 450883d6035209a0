import { describe, expect, it } from 'vitest';
import { summarizeAges, TagStatusBoard } from '../../../src/connectors/opcua/tag-status-board.js';

const tags = [0, 1, 2, 3].map((i) => ({ tag: `t${i}`, nodeId: `ns=1;i=${i}`, mode: 'subscribe' as const, samplingIntervalMs: 100, queueSize: 1 }));

describe('TagStatusBoard', () => {
  it('reports a degradation once per reason, and recovers', () => {
    const board = new TagStatusBoard(tags);
    expect(board.degrade(1, 'BadNodeIdUnknown', 'create', 10)).toBe(true);
    expect(board.degrade(1, 'BadNodeIdUnknown', 'create', 20)).toBe(false);
    expect(board.degrade(1, 'BadUserAccessDenied', 'status', 30)).toBe(true);
    expect(board.degraded()).toEqual([{ tag: 't1', nodeId: 'ns=1;i=1', reason: 'BadUserAccessDenied', kind: 'status', since: 10 }]);
    expect(board.degradedIndices(['create'])).toEqual([]);
    expect(board.degradedIndices(['status'])).toEqual([1]);
    expect(board.recover(1)).toBe(true);
    expect(board.degradedCount).toBe(0);
  });

  it('ages count from the last update, or from the session start, and leave degraded tags out', () => {
    const board = new TagStatusBoard(tags);
    board.resetEpoch(1000);
    board.touch(0, 4000);
    board.touch(1, 2000);
    board.degrade(3, 'x', 'value');
    const ages = board.ages(5000);
    expect([...ages]).toEqual([1, 3, 4]);
    expect(summarizeAges(ages)).toEqual({ max: 4, p50: 3, p99: 3 });
    expect(summarizeAges(new Float64Array())).toEqual({ max: 0, p50: 0, p99: 0 });
  });
});
