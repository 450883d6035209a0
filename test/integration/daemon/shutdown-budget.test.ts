import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess } from '../../support/daemon-process.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { TcpProxy } from '../opcua/tcp-proxy.js';

/**
 * SIGTERM with PLCs that stopped answering: four OPC UA sessions through loopback proxies that are then black-holed
 * (sockets open, no byte gets through: a network cut as both ends see it), so each source's stop waits for its close
 * requests to time out. The sources stop in parallel, and the buffer's final commit always runs: exit 0 well within
 * the unit's TimeoutStopSec (20 s), with the last samples an MQTT source received before SIGTERM in the SQLite file.
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const TIMEOUT_STOP_SEC = 20;
const PLCS = 4;
const SAMPLES = 200;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-shutdown-'));
const stateDir = path.join(dir, 'state');
const topic = `lineguard-shutdown/${process.pid}/line1`;

let server: OpcuaTestServer;
const proxies: TcpProxy[] = [];
let publisher: MqttClient;
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  server = await OpcuaTestServer.start({ securityModes: ['None'], variables: [{ name: 'Speed', dataType: 'Double', value: 1 }] });
  for (let i = 0; i < PLCS; i++) proxies.push(await TcpProxy.start(server.port));
  publisher = await mqtt.connectAsync(MQTT_URL, { clientId: `shutdown-pub-${process.pid}`, clean: true });
}, 60_000);

afterAll(async () => {
  await daemon?.kill();
  await publisher?.endAsync(true);
  for (const proxy of proxies) await proxy.close();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function config(): string {
  const plcs = proxies.map((proxy, i) => `  - name: plc${i + 1}
    endpoint: opc.tcp://127.0.0.1:${proxy.port}
    security: { mode: None, policy: None }
    requestTimeoutMs: 20000
    tags: [{ tag: plc${i + 1}.speed, nodeId: "${server.stableNodeId('Speed')}" }]`);
  // A long flush interval: the samples below are committed by the final commit at stop, or not at all.
  return `gateway: { id: shutdown-test, stateDir: ${JSON.stringify(stateDir)} }
http: { port: 0 }
buffer: { flushIntervalMs: 60000 }
opcua:
${plcs.join('\n')}
mqtt:
  brokers: [{ name: local, url: "${MQTT_URL}" }]
  sources:
    - name: line
      broker: local
      topics: [${topic}]
      values: [{ tag: line1.count, pointer: /v }]
      timestamp: { pointer: /ts }
`;
}

async function metric(baseUrl: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

describe('shutdown budget', () => {
  it(`SIGTERM with ${PLCS} black-holed PLCs exits 0 within TimeoutStopSec and commits the last samples`, async () => {
    const configFile = path.join(dir, 'lineguard.yaml');
    writeFileSync(configFile, config());
    const proc = new DaemonProcess(['run', '--config', configFile]);
    daemon = proc;
    const baseUrl = String((await proc.waitForMessage('serving /metrics and /healthz')).url);
    const ready = await proc.waitForMessage('lineguard ready');
    expect(ready.health).not.toBe('down');
    for (let i = 1; i <= PLCS; i++) {
      await proc.waitFor((l) => l.component === 'opcua' && l.instance === `plc${i}` && l.msg === 'connected', 20_000, `plc${i} connected`);
    }

    for (const proxy of proxies) proxy.blackholeExisting();
    const t0 = Date.now() - 60_000;
    for (let i = 1; i <= SAMPLES; i++) {
      publisher.publish(topic, JSON.stringify({ v: i, ts: t0 + i }), { qos: 1 });
    }
    // Received and on the tag bus (not yet committed: the flush interval is a minute).
    const received = /^lineguard_mqtt_samples_total\{source="line",gateway="shutdown-test"\} (\d+)/m;
    const deadline = Date.now() + 10_000;
    while ((await metric(baseUrl, received)) < SAMPLES) {
      if (Date.now() > deadline) throw new Error(`the MQTT source did not receive ${SAMPLES} samples`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const stopAt = Date.now();
    proc.signal('SIGTERM');
    const exit = await proc.exit;
    const stopS = (Date.now() - stopAt) / 1000;
    expect(exit, proc.rawStdout.slice(-20).join('\n')).toEqual({ code: 0, signal: null });
    expect(stopS).toBeLessThan(TIMEOUT_STOP_SEC);
    expect(proc.lines.some((l) => l.msg === 'shutdown took too long; exiting anyway')).toBe(false);
    const order = proc.lines.filter((l) => l.msg === 'buffer database closed' || l.msg === 'gateway stopped').map((l) => l.msg);
    expect(order).toEqual(['buffer database closed', 'gateway stopped']);

    const db = new BetterSqlite3(path.join(stateDir, 'lineguard.db'), { readonly: true });
    try {
      const rows = db
        .prepare('SELECT s.ts, s.value FROM samples s JOIN tags t ON t.id = s.tag_id WHERE t.name = ? ORDER BY s.ts')
        .all('line1.count') as Array<{ ts: number; value: number }>;
      expect(rows).toHaveLength(SAMPLES);
      expect(rows.at(-1)).toEqual({ ts: t0 + SAMPLES, value: SAMPLES });
    } finally {
      db.close();
    }
  });
});
