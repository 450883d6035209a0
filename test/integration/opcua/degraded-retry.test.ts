import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpcuaSource } from '../../../src/connectors/opcua/index.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { makeContext, serverConfig, waitFor } from './harness.js';

/**
 * Issue 13: a tag degraded by the status of its values (the node exists, the item is created, every value says
 * BadUserAccessDenied) was re-created at each retry, logged "recovered", then "degraded" again at its next value:
 * two lines per tag every retryDegradedMs, for as long as the PLC said so.
 */
let server: OpcuaTestServer;
beforeAll(async () => {
  server = await OpcuaTestServer.start({
    securityModes: ['None'],
    variables: [{ name: 'Locked', dataType: 'Double', value: 1 }, { name: 'Open', dataType: 'Double', value: 1 }],
  });
}, 60_000);
afterAll(async () => {
  await server?.dispose();
});

describe('OpcuaSource degraded-tag retries', () => {
  it('log a status-degraded tag once, not at every retry, and recover it at its next usable value', async () => {
    const t = makeContext();
    const source = new OpcuaSource(serverConfig(server.endpoint, [
      { tag: 'locked', nodeId: server.stableNodeId('Locked') },
      { tag: 'open', nodeId: server.stableNodeId('Open') },
    ], { retryDegradedMs: 1000 }), t.ctx);
    const about = (tag: string, prefix: string) => t.logs.lines.filter((l) => l.tag === tag && String(l.msg).startsWith(prefix));
    try {
      await source.start(new AbortController().signal);
      await waitFor(() => t.samples.some((s) => s.tag === 'open'), 'the first values');
      server.setValue('Locked', 2, { status: 'BadUserAccessDenied' });
      await waitFor(() => source.health().details?.degradedTagCount === 1, 'the tag to be degraded');
      // Three retries of the degraded tag (the source logs each at debug).
      const retries = () => t.logs.lines.filter((l) => l.msg === 'retrying degraded tags').length;
      const before = retries();
      await waitFor(() => retries() >= before + 3, 'three retries', 15_000);
      // Its value after the last re-create has arrived (the server sends the current value of a new item).
      const open = t.samples.filter((s) => s.tag === 'open').length;
      server.setValue('Open', 9);
      await waitFor(() => t.samples.filter((s) => s.tag === 'open').length > open, 'a later publish');
      expect(about('locked', 'tag degraded')).toHaveLength(1);
      expect(about('locked', 'tag recovered')).toHaveLength(0);
      expect(source.health().details?.degradedTagCount).toBe(1);

      server.setValue('Locked', 3);
      await waitFor(() => source.health().details?.degradedTagCount === 0, 'the tag to recover at its next good value', 10_000);
      expect(about('locked', 'tag recovered')).toHaveLength(1);
      expect(t.samples.filter((s) => s.tag === 'locked').at(-1)).toMatchObject({ value: 3, quality: 'good' });
    } finally {
      await source.stop();
      t.cleanup();
    }
  }, 60_000);
});
