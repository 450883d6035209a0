import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OpcuaSource } from '../../../src/connectors/opcua/index.js';
import { freePort } from '../../support/mosquitto.js';
import { spawnOpcuaTestServer, type ChildOpcuaTestServer, type OpcuaTestServerOptions } from '../../support/opcua-server.js';
import { makeContext, serverConfig, waitFor } from './harness.js';

/**
 * Issue 13: values are back at most 5 s after the server is. The server runs in a child process that is stopped
 * (SIGTERM, or SIGKILL as a crashed PLC runtime) and started again on the same port, several times in a row, with
 * the default reconnect settings (1 s initial, 60 s max): each restart pushes the backoff of a gateway that only
 * resets it after a long session further out.
 */

/** 4 in `npm test`; LINEGUARD_OPCUA_RESTARTS=20 for the soak the issue measured (about 3 minutes). */
const RESTARTS = Number(process.env.LINEGUARD_OPCUA_RESTARTS ?? 4);
const RESUME_LIMIT_MS = 5000;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-resume-'));
let child: ChildOpcuaTestServer | undefined;
afterAll(async () => {
  await child?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('OpcuaSource resumes within 5 s of the server', () => {
  it(`after ${RESTARTS} restarts of a child-process server`, async () => {
    const options: OpcuaTestServerOptions = {
      dir, securityModes: ['None'], variables: [{ name: 'Counter', dataType: 'Double', value: 0, generator: 'counter' }],
    };
    child = await spawnOpcuaTestServer(options);
    const port = child.port;
    const t = makeContext();
    const arrivals: number[] = [];
    t.bus.subscribe((batch) => {
      if (batch.some((s) => s.tag === 'counter' && s.quality === 'good')) arrivals.push(performance.now());
    });
    const source = new OpcuaSource(
      serverConfig(child.endpoint, [{ tag: 'counter', nodeId: child.stableNodeId('Counter'), samplingIntervalMs: 100 }], {
        reconnect: { initialDelayMs: 1000, maxDelayMs: 60_000 },
      }),
      t.ctx,
    );
    const gaps: number[] = [];
    try {
      await source.start(new AbortController().signal);
      await waitFor(() => arrivals.length > 0, 'the first sample', 20_000);
      for (let i = 0; i < RESTARTS; i++) {
        const running = child;
        if (i % 2 === 1) process.kill(running.pid, 'SIGKILL');
        await running.stop();
        await waitFor(() => source.health().details?.session !== 'connected', 'the loss to be noticed');
        child = await spawnOpcuaTestServer({ ...options, port });
        const back = performance.now();
        await waitFor(() => arrivals.some((a) => a > back), `the first sample after restart ${i + 1}`, 30_000);
        gaps.push(Math.round(arrivals.find((a) => a > back)! - back));
      }
    } finally {
      await source.stop();
      t.cleanup();
    }
    const sorted = [...gaps].sort((a, b) => a - b);
    console.log(`server back → first new sample (ms): ${gaps.join(', ')}; p50 ${sorted[Math.floor(sorted.length / 2)]}, max ${sorted.at(-1)}`);
    expect(gaps).toHaveLength(RESTARTS);
    for (const gap of gaps) expect(gap).toBeLessThan(RESUME_LIMIT_MS);
  }, 60_000 + RESTARTS * 30_000);
});

describe('OpcuaSource and the daemon\'s signal', () => {
  it('removes its abort listener at stop: reloads do not pile listeners on the daemon\'s signal', async () => {
    const daemon = new AbortController();
    const endpoint = `opc.tcp://127.0.0.1:${await freePort()}`;
    const before = getEventListeners(daemon.signal, 'abort').length;
    for (let reload = 0; reload < 3; reload++) {
      const t = makeContext();
      const source = new OpcuaSource(serverConfig(endpoint, [{ tag: 'x', nodeId: 'ns=2;s=X' }]), t.ctx);
      await source.start(daemon.signal);
      expect(getEventListeners(daemon.signal, 'abort').length).toBe(before + 1);
      await source.stop();
      t.cleanup();
    }
    expect(getEventListeners(daemon.signal, 'abort').length).toBe(before);
  }, 60_000);
});
