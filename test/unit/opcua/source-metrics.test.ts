import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SourceMetrics } from '../../../src/connectors/opcua/source-metrics.js';
import { TagStatusBoard } from '../../../src/connectors/opcua/tag-status-board.js';

const tags = ['a', 'b', 'c'].map((tag, i) => ({ tag, nodeId: `ns=1;i=${i}`, mode: 'subscribe' as const, samplingIntervalMs: 100, queueSize: 1 }));

describe('SourceMetrics', () => {
  it('exports the summary and per-tag ages, the session state, and removes its series on stop', async () => {
    const registry = new Registry();
    const m = new SourceMetrics(registry, 'plc1', tags.map((t) => t.tag), true);
    const other = new SourceMetrics(registry, 'plc2', ['x'], false);
    const board = new TagStatusBoard(tags);
    board.resetEpoch(0);
    board.touch(0, 9000);
    board.touch(1, 5000);
    board.degrade(2, 'BadNodeIdUnknown', 'create');
    m.refreshTags(board, 10_000);
    m.setSessionState('connected');
    m.notifications(5);
    m.badQuality('bad', 2);
    m.connectFailed('network');
    other.notifications(1);

    const text = await registry.metrics();
    expect(text).toContain('lineguard_opcua_tag_update_age_summary_seconds{server="plc1",stat="max"} 5');
    expect(text).toContain('lineguard_opcua_tag_update_age_seconds{server="plc1",tag="a"} 1');
    expect(text).not.toContain('tag="c"');
    expect(text).toContain('lineguard_opcua_degraded_tags{server="plc1"} 1');
    expect(text).toContain('lineguard_opcua_session_state{server="plc1",state="connected"} 1');
    expect(text).toContain('lineguard_opcua_session_state{server="plc1",state="disconnected"} 0');
    expect(text).toContain('lineguard_opcua_notifications_total{server="plc1"} 5');

    // A reload builds a new source on the same registry: the helpers reuse the metrics.
    expect(() => new SourceMetrics(registry, 'plc3', [], false)).not.toThrow();
    m.remove();
    const after = await registry.metrics();
    expect(after).not.toContain('server="plc1"');
    expect(after).toContain('lineguard_opcua_notifications_total{server="plc2"} 1');
  });
});
