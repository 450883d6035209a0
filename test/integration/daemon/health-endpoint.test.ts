import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, type DaemonOptions } from '../../../src/daemon/daemon.js';
import { loadConfigFile } from '../../../src/daemon/config/load.js';
import { createLogger, SecretRedactor } from '../../../src/daemon/logger.js';
import { BlackHole } from '../../fixtures/mqtt/black-hole.js';
import { freePort } from '../../support/mosquitto.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';

/**
 * /healthz semantics through the real HTTP endpoint of an in-process daemon with real components (SQLite buffer,
 * node-opcua server and source, MQTT sink): 200 for starting, up and degraded with every component's state and
 * reason; 503 only when the gateway cannot do its job (README "Observability").
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-health-'));
const topicRoot = `lineguard-health-${process.pid}`;
let server: OpcuaTestServer;
let hole: BlackHole;
const running: Daemon[] = [];

beforeAll(async () => {
  server = await OpcuaTestServer.start({
    securityModes: ['None'],
    variables: [
      { name: 'Speed', dataType: 'Double', value: 1 },
      { name: 'Torque', dataType: 'Double', value: 2 },
      { name: 'Temp', dataType: 'Double', value: 3 },
    ],
  });
  hole = await BlackHole.start();
}, 60_000);

afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

afterAll(async () => {
  await hole?.close();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Body {
  status: string;
  reasons: string[];
  components: Record<string, { state: string; reason?: string }>;
}

let seq = 0;
function daemonFor(yaml: (stateDir: string) => string, options: DaemonOptions = {}): { daemon: Daemon; lines: Array<Record<string, unknown>> } {
  const name = `gw-${++seq}`;
  const file = path.join(dir, `${name}.yaml`);
  const stateDir = path.join(dir, name);
  writeFileSync(file, `gateway: { id: ${name}, stateDir: ${JSON.stringify(stateDir)} }\nhttp: { port: 0 }\n${yaml(stateDir)}`);
  const loaded = loadConfigFile(file);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const redactor = new SecretRedactor();
  const daemon = new Daemon(file, loaded, createLogger({ level: 'info', destination }, redactor), redactor, options);
  running.push(daemon);
  return { daemon, lines };
}

async function healthz(daemon: Daemon): Promise<{ code: number; body: Body }> {
  const res = await fetch(`http://127.0.0.1:${daemon.httpPort}/healthz`);
  return { code: res.status, body: (await res.json()) as Body };
}

async function pollHealthz(daemon: Daemon, ok: (r: { code: number; body: Body }) => boolean, what: string, ms = 15_000): Promise<{ code: number; body: Body }> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await healthz(daemon);
    if (ok(r)) return r;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${r.code} ${JSON.stringify(r.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const sinkOn = (url: string, extra = ''): string => `mqtt:
  brokers: [{ name: site, url: "${url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }]
  alerts: { broker: site, topic: "${topicRoot}/{gateway}/alerts/{model}", statusTopic: "${topicRoot}/{gateway}/status"${extra} }
`;

describe('/healthz', () => {
  it('answers 200 degraded, not 503, when every component runs and some tags are bad', async () => {
    const { daemon } = daemonFor(() => `opcua:
  - name: plc1
    endpoint: ${server.endpoint}
    security: { mode: None, policy: None }
    tags:
      - { tag: press.speed, nodeId: "${server.stableNodeId('Speed')}" }
      - { tag: press.torque, nodeId: "${server.stableNodeId('Torque')}" }
      - { tag: press.temp, nodeId: "${server.stableNodeId('Temp')}" }
      - { tag: press.missing1, nodeId: "${server.stableNodeId('NoSuchNode1')}" }
      - { tag: press.missing2, nodeId: "${server.stableNodeId('NoSuchNode2')}" }
${sinkOn(MQTT_URL)}`);
    await daemon.start();
    const r = await pollHealthz(daemon, (h) => h.body.components['opcua/plc1']?.state === 'degraded' && h.body.status !== 'starting', 'the bad tags');
    expect(r.code).toBe(200);
    expect(r.body.status).toBe('degraded');
    expect(r.body.components).toMatchObject({ buffer: { state: 'up' }, 'mqtt-sink': { state: 'up' } });
    expect(r.body.reasons).toEqual([expect.stringMatching(/^opcua\/plc1 is degraded: 2 of 5 tags degraded \(press\.missing\d: /)]);
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^lineguard_gateway_state\{state="degraded",gateway="gw-\d+"\} 1$/m);
    expect(metrics).toMatch(/^lineguard_gateway_state\{state="down",gateway="gw-\d+"\} 0$/m);
  });

  it('answers 503 down once alerts have been undeliverable beyond the sink bound, 200 degraded before', async () => {
    const dead = await freePort();
    const { daemon } = daemonFor(() => sinkOn(`mqtt://127.0.0.1:${dead}`, ', maxUnackedAgeMs: 1000, maxUndeliveredMs: 3000'));
    await daemon.start();
    const early = await healthz(daemon);
    expect(early.code).toBe(200);
    expect(early.body.status).toBe('degraded');
    expect(early.body.components['mqtt-sink']).toMatchObject({ state: 'down', reason: expect.stringMatching(/^cannot reach MQTT broker "site"/) });
    const r = await pollHealthz(daemon, (h) => h.code === 503, '503', 10_000);
    expect(r.body.status).toBe('down');
    expect(r.body.reasons[0]).toMatch(/^alerts cannot be delivered: no connection to MQTT broker "site" for [\d.]+ s \(bound 3\.0 s\)/);
    expect(r.body.reasons[1]).toMatch(/^mqtt-sink is down: cannot reach MQTT broker "site"/);
  });

  it('answers 503 down when the buffer cannot run', async () => {
    const { daemon } = daemonFor((stateDir) => {
      // The database path is a directory: SQLite cannot open it.
      mkdirSync(path.join(stateDir, 'not-a-file.db'), { recursive: true });
      return 'buffer: { file: not-a-file.db }\n';
    });
    await daemon.start();
    const r = await healthz(daemon);
    expect(r.code).toBe(503);
    expect(r.body.status).toBe('down');
    expect(r.body.reasons[0]).toBe('the buffer is down: samples and alerts cannot be stored');
    expect(r.body.components.buffer!.state).toBe('down');
  });

  it('answers 200 starting during start-up, then leaves starting after the warm-up bound and logs it once', async () => {
    // A PLC that accepts TCP and never answers: its source is still on its first attempt while start() runs.
    const { daemon, lines } = daemonFor(() => `opcua:
  - name: silent
    endpoint: opc.tcp://127.0.0.1:${hole.port}
    security: { mode: None, policy: None }
    requestTimeoutMs: 3000
    tags: [{ tag: silent.speed, nodeId: "ns=2;s=Speed" }]
`, { warmUpGraceMs: 1_500 });
    let startDone = false;
    const starting = daemon.start().then(() => {
      startDone = true;
    });
    await new Promise<void>((resolve, reject) => {
      const end = Date.now() + 5_000;
      const check = (): void => {
        if (daemon.httpPort) resolve();
        else if (Date.now() > end) reject(new Error('no HTTP port'));
        else setTimeout(check, 20);
      };
      check();
    });
    const during = await pollHealthz(daemon, (h) => h.body.components['opcua/silent'] !== undefined, 'the source in the report', 5_000);
    expect(startDone).toBe(false);
    expect(during.code).toBe(200);
    expect(during.body.status).toBe('starting');
    expect(during.body.components['opcua/silent']!.state).toBe('starting');
    await starting;
    const after = await pollHealthz(daemon, (h) => h.body.status !== 'starting', 'the end of the warm-up', 10_000);
    expect(after.code).toBe(200);
    expect(after.body.status).toBe('degraded');
    expect(after.body.reasons).toEqual([expect.stringMatching(/^opcua\/silent is (still starting after \d+ s|down): /)]);
    const deadline = Date.now() + 5_000;
    while (!lines.some((l) => String(l.msg).startsWith('gateway warmed up'))) {
      if (Date.now() > deadline) throw new Error('no "gateway warmed up" log line');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const warmed = lines.filter((l) => String(l.msg).startsWith('gateway warmed up'));
    expect(warmed).toHaveLength(1);
    expect(warmed[0]).toMatchObject({ health: 'degraded', level: 40 });
  });
});
