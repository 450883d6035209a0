import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpcuaSource } from '../../../src/connectors/opcua/index.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { makeContext, metricValue, serverConfig, waitFor, type TestContext } from './harness.js';
import { TcpProxy } from './tcp-proxy.js';

/** One server for the file; the tests restart it, so they run in order. */
let server: OpcuaTestServer;

beforeAll(async () => {
  server = await OpcuaTestServer.start({
    securityModes: ['None'],
    variables: [
      { name: 'Speed', dataType: 'Double', value: 1 },
      { name: 'Torque', dataType: 'Double', value: 1 },
      { name: 'Mode', dataType: 'Int32', value: 1 },
    ],
  });
}, 60_000);

afterAll(async () => {
  await server?.dispose();
});

const tags = (): Parameters<typeof serverConfig>[1] => [
  { tag: 'speed', nodeId: server.stableNodeId('Speed') },
  { tag: 'torque', nodeId: server.stableNodeId('Torque') },
  { tag: 'mode', nodeId: server.stableNodeId('Mode'), mode: 'poll', pollIntervalMs: 100 },
];

function lastValue(t: TestContext, tag: string): number | boolean | string | undefined {
  return t.samples.filter((s) => s.tag === tag).at(-1)?.value;
}

describe('OpcuaSource reconnect', () => {
  it('comes back after the server restarts on the same port, even with its namespaces renumbered', async () => {
    const t = makeContext();
    const source = new OpcuaSource(serverConfig(server.endpoint, tags()), t.ctx);
    try {
      await source.start(new AbortController().signal);
      server.setValue('Speed', 10);
      await waitFor(() => lastValue(t, 'speed') === 10 && lastValue(t, 'mode') === 1, 'values before the restart');
      const indexBefore = server.namespaceIndex;

      // 1. Plain restart.
      await server.restart();
      await waitFor(() => source.health().details?.session === 'disconnected' || source.health().details?.session === 'connecting', 'the loss to be noticed');
      await waitFor(() => source.health().state === 'up', 'reconnection', 15_000);
      server.setValue('Speed', 11);
      server.setValue('Mode', 2);
      await waitFor(() => lastValue(t, 'speed') === 11 && lastValue(t, 'mode') === 2, 'values after the restart');
      expect(server.sessionCount).toBe(1);
      expect(server.subscriptionCount).toBe(1);
      expect(server.monitoredItemCount).toBe(2);

      // 2. Restart with two namespaces registered before ours: every index moves, nsu= ids still resolve.
      await server.restart({ namespacesBefore: ['urn:lineguard:test:first', 'urn:lineguard:test:second'] });
      expect(server.namespaceIndex).toBe(indexBefore + 2);
      await waitFor(() => source.health().state !== 'up', 'the second loss to be noticed');
      await waitFor(() => source.health().state === 'up', 'second reconnection', 15_000);
      server.setValue('Speed', 12);
      server.setValue('Torque', 5);
      server.setValue('Mode', 3);
      await waitFor(() => lastValue(t, 'speed') === 12 && lastValue(t, 'torque') === 5 && lastValue(t, 'mode') === 3, 'values after the renumbering');
      expect(server.subscriptionCount).toBe(1);
      expect(server.monitoredItemCount).toBe(2);
      expect(source.health().details?.degradedTagCount).toBe(0);

      // Values are not duplicated by a stale second subscription: each change arrives once.
      const speeds = t.samples.filter((s) => s.tag === 'speed').map((s) => s.value);
      expect(speeds.filter((v) => v === 12)).toHaveLength(1);
      expect(await metricValue(t.registry, 'lineguard_opcua_reconnects_total', { server: 'plc' })).toBe(2);
      expect(source.health().details?.reconnects).toBe(2);
      expect(t.logs.messages().filter((m) => m.startsWith('reconnected'))).toHaveLength(2);
    } finally {
      await source.stop();
      t.cleanup();
    }
    await waitFor(() => server.sessionCount === 0, 'the session to be closed by stop()');
  });

  it('keeps retrying while the server is down, reporting down with the reason, and recovers when it returns', async () => {
    const t = makeContext();
    const source = new OpcuaSource(serverConfig(server.endpoint, tags()), t.ctx);
    try {
      await server.stop();
      const started = Date.now();
      await source.start(new AbortController().signal);
      expect(Date.now() - started).toBeLessThan(10_000);
      const health = source.health();
      expect(health.state).toBe('down');
      expect(health.reason).toMatch(/cannot reach opc\.tcp:\/\/127\.0\.0\.1:\d+/);
      // The cause node-opcua puts on the last line of its message, not its generic first sentence.
      expect(health.reason).toMatch(/: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
      await new Promise((r) => setTimeout(r, 1500));
      // Several attempts, one warning: repeats of the same reason are not logged again at warn.
      expect(await metricValue(t.registry, 'lineguard_opcua_connect_failures_total', { server: 'plc', kind: 'network' })).toBeGreaterThanOrEqual(2);
      expect(t.logs.lines.filter((l) => l.level === 40 && String(l.msg).startsWith('connect failed'))).toHaveLength(1);
      await server.restart();
      await waitFor(() => source.health().state === 'up', 'connection once the server is back', 15_000);
      server.setValue('Torque', 77);
      await waitFor(() => lastValue(t, 'torque') === 77, 'values');
    } finally {
      await source.stop();
      t.cleanup();
    }
  });

  it('names the cause when the endpoint host does not resolve', async () => {
    const t = makeContext();
    const source = new OpcuaSource(serverConfig('opc.tcp://plc-that-does-not-exist.invalid:4840', tags()), t.ctx);
    try {
      await source.start(new AbortController().signal);
      await waitFor(() => source.health().state === 'down', 'the first failed attempt', 20_000);
      expect(source.health()).toMatchObject({
        state: 'down',
        reason: expect.stringMatching(/cannot reach opc\.tcp:\/\/plc-that-does-not-exist\.invalid:4840: its host name does not resolve \(getaddrinfo (ENOTFOUND|EAI_AGAIN) plc-that-does-not-exist\.invalid\)/),
      });
    } finally {
      await source.stop();
      t.cleanup();
    }
  });

  it('reconnects a session that is connected but silent (half-open connection)', async () => {
    const t = makeContext();
    const proxy = await TcpProxy.start(server.port);
    const source = new OpcuaSource(serverConfig(`opc.tcp://127.0.0.1:${proxy.port}`, tags(), { requestTimeoutMs: 20_000 }), t.ctx);
    try {
      await source.start(new AbortController().signal);
      server.setValue('Speed', 20);
      await waitFor(() => lastValue(t, 'speed') === 20, 'values through the proxy');
      proxy.blackholeExisting();
      // Keep-alive period 100 ms × 10; silence timeout 3 periods. The requests time out only after 20 s.
      await waitFor(() => t.logs.lines.some((l) => String(l.reason ?? '').startsWith('connected but silent')), 'the watchdog', 10_000);
      await waitFor(() => source.health().state === 'up' && (source.health().details?.reconnects as number) === 1, 'reconnection', 15_000);
      server.setValue('Speed', 21);
      await waitFor(() => lastValue(t, 'speed') === 21, 'values after the watchdog reconnect');
    } finally {
      await source.stop();
      await proxy.close();
      t.cleanup();
    }
  });
});
