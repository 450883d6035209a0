import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../../src/core/alert.js';
import { AlertRecorder, type ReceivedAlert } from '../../support/alert-recorder.js';
import { alertSchemaErrors } from '../../support/alert-schema.js';
import { DaemonProcess } from '../../support/daemon-process.js';
import { freePort, Mosquitto } from '../../support/mosquitto.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';

/**
 * "Silence is not health" (issue 12, item 3), as a process: `lineguard run` raises `model_unavailable` through the
 * outbox when a model's inputs go stale (the device stops publishing) or go bad (an OPC UA sensor failure), within
 * `models[].unavailable.afterMs`, shows the model down in /healthz with the reason, and clears the same occurrence
 * when the inputs come back; `source_unavailable` is raised for an MQTT source whose broker goes away and for an OPC
 * UA server nothing listens for, on the alert broker (another one), and cleared when they are back. Every alert
 * received validates against the payload schema of docs/alert-payload.md.
 */
const MODEL = path.resolve('test/fixtures/models/last-value.onnx');
const AFTER_MS = 2000;
/** The source watch looks at the sources once a second. */
const SOURCE_CHECK_MS = 1000;
/** Room for a loaded 2-core machine: process scheduling, the sink's publish, the broker's delivery. */
const SLACK_MS = 2000;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-unavailable-'));
const topicRoot = `lineguard-unavailable-${process.pid}`;

let alertBroker: Mosquitto;
let recorder: AlertRecorder;
const cleanup: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  alertBroker = await Mosquitto.start({ persistence: false });
  recorder = await AlertRecorder.start(alertBroker.url, `unavailable-sub-${process.pid}`, `${topicRoot}/+/alerts/#`);
}, 30_000);

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

afterAll(async () => {
  await recorder?.close();
  await alertBroker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

interface Health {
  status: string;
  reasons: string[];
  components: Record<string, { state: string; reason?: string; details?: Record<string, unknown> }>;
}

interface Running {
  daemon: DaemonProcess;
  baseUrl: string;
  healthz: () => Promise<{ code: number; body: Health }>;
}

async function startGateway(id: string, body: string): Promise<Running> {
  const file = path.join(dir, `${id}.yaml`);
  writeFileSync(file, `gateway:
  id: ${id}
  stateDir: ${JSON.stringify(path.join(dir, id))}
  sourceUnavailable: { afterMs: ${AFTER_MS} }
http: { port: 0 }
${body}`);
  const daemon = new DaemonProcess(['run', '--config', file]);
  cleanup.push(() => daemon.kill());
  const serving = await daemon.waitForMessage('serving /metrics and /healthz', 30_000);
  const baseUrl = String(serving.url);
  await daemon.waitForMessage('lineguard ready', 30_000);
  const healthz = async (): Promise<{ code: number; body: Health }> => {
    const res = await fetch(`${baseUrl}/healthz`);
    return { code: res.status, body: (await res.json()) as Health };
  };
  return { daemon, baseUrl, healthz };
}

async function pollHealth(gw: Running, ok: (h: { code: number; body: Health }) => boolean, what: string, ms = 15_000): Promise<{ code: number; body: Health }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const h = await gw.healthz();
    if (ok(h)) return h;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${h.code} ${JSON.stringify(h.body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The first alert received (from index `from` on) that matches. */
async function nextAlert(match: (a: AlertEvent) => boolean, what: string, from = 0, ms = 15_000): Promise<ReceivedAlert> {
  let found: ReceivedAlert | undefined;
  await recorder.waitFor(() => (found = recorder.received.slice(from).find((r) => match(r.alert))) !== undefined, what, ms);
  return found!;
}

/** A device publishing JSON rows `{a, b, ts}` every `everyMs` on `topic`, with `a` settable, until stopped. */
async function device(url: string, topic: string, everyMs = 100): Promise<{ a: number; start(): void; stop(): number }> {
  const client: MqttClient = await mqtt.connectAsync(url, { clientId: `unavailable-dev-${process.pid}-${topic.split('/').at(-2)}`, clean: true });
  let timer: NodeJS.Timeout | undefined;
  let lastAt = 0;
  const dev = {
    a: 0.1,
    start(): void {
      if (timer) return;
      timer = setInterval(() => {
        lastAt = Date.now();
        client.publish(topic, JSON.stringify({ a: dev.a, b: 10, ts: lastAt }), { qos: 1 });
      }, everyMs);
    },
    /** Stops publishing; returns the wall time of the last row. */
    stop(): number {
      clearInterval(timer);
      timer = undefined;
      return lastAt;
    },
  };
  cleanup.push(async () => {
    dev.stop();
    await client.endAsync(true);
  });
  return dev;
}

const sinkOn = (brokers: string): string => `mqtt:
  brokers: [${brokers}]
  alerts: { broker: alerts, topic: "${topicRoot}/{gateway}/alerts/{model}", statusTopic: "${topicRoot}/{gateway}/status" }`;

function expectValidPayloads(events: AlertEvent[]): void {
  const problems = events.flatMap((e) => alertSchemaErrors(e).map((m) => `${e.kind} ${e.state} ${e.eventId}: ${m}`));
  expect(problems).toEqual([]);
}

describe('model_unavailable', () => {
  it('stale inputs (the device stops): raised within afterMs with the standing alert unevaluated, /healthz down with the reason, cleared when rows come back', { timeout: 60_000 }, async () => {
    const from = recorder.received.length;
    const dev = await device(alertBroker.url, `${topicRoot}/stale/press1/data`);
    dev.a = 0.95;
    dev.start();
    const gw = await startGateway('gw-stale', `${sinkOn(`{ name: alerts, url: "${alertBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }`)}
  sources:
    - name: line
      broker: alerts
      topics: [${topicRoot}/stale/+/data]
      values: [{ tag: "{3}.a", pointer: /a }, { tag: "{3}.b", pointer: /b }]
      timestamp: { pointer: /ts, format: epoch_ms }
models:
  - name: press
    file: ${JSON.stringify(MODEL)}
    asset: stale-line/press1
    inputs: [press1.a, press1.b]
    window: { samples: 4, latenessMs: 200 }
    schedule: { everyMs: 100 }
    watch: false
    alert: { kind: equipment_fault, severity: major, raiseAbove: 0.8, clearBelow: 0.5 }
    unavailable: { afterMs: ${AFTER_MS}, severity: critical }
`);
    // The rule raises first: that alert then stands unevaluated while the model is blind.
    const fault = await nextAlert((a) => a.kind === 'equipment_fault' && a.state === 'raised' && a.model?.name === 'press', 'the rule alert', from);
    await pollHealth(gw, (h) => h.body.components['model/press']?.state === 'up', 'the model up');

    const lastRow = dev.stop();
    const raised = await nextAlert((a) => a.kind === 'model_unavailable' && a.state === 'raised', 'model_unavailable raised', from);
    const after = raised.at - lastRow;
    // Not before afterMs of silence (the last window is evaluated after the last row), and not much after it.
    expect(after).toBeGreaterThanOrEqual(AFTER_MS - 50);
    expect(after).toBeLessThan(AFTER_MS + 200 + SLACK_MS);
    expect(raised.alert).toMatchObject({
      state: 'raised', kind: 'model_unavailable', severity: 'critical', gateway: 'gw-stale', asset: 'stale-line/press1',
      model: { name: 'press' }, unevaluatedAlerts: [fault.alert.alertId],
    });
    expect(raised.alert.raisedAt).toBe(raised.alert.ts);
    expect(raised.alert.message).toMatch(/model press/);

    const down = await pollHealth(gw, (h) => h.body.components['model/press']?.state === 'down', 'the model down in /healthz');
    const model = down.body.components['model/press']!;
    expect(model.reason).toMatch(/^model_unavailable: cannot infer \(.+\) since /);
    expect(model.reason).toMatch(/stale or missing inputs|no new window/);
    expect(model.details).toMatchObject({
      unavailable: { alertId: raised.alert.alertId },
      alerts: [{ rule: 'alert', active: true, alertId: fault.alert.alertId, evaluating: false }],
    });
    // The only model is down: the gateway cannot do its job (README "Observability").
    expect(down.code).toBe(503);
    expect(down.body.status).toBe('down');
    expect(down.body.reasons.join('\n')).toMatch(/model\/press/);

    dev.start();
    const cleared = await nextAlert((a) => a.kind === 'model_unavailable' && a.state === 'cleared', 'model_unavailable cleared', from);
    expect(cleared.alert).toMatchObject({ alertId: raised.alert.alertId, raisedAt: raised.alert.raisedAt, model: { name: 'press' } });
    expect(cleared.alert.eventId).not.toBe(raised.alert.eventId);
    expect(cleared.alert.ts).toBeGreaterThanOrEqual(raised.alert.ts);
    expect(cleared.alert.clearedAt).toBe(cleared.alert.ts);
    const up = await pollHealth(gw, (h) => h.body.components['model/press']?.state === 'up', 'the model up again');
    expect(up.code).toBe(200);
    expect(up.body.components['model/press']!.details).toMatchObject({ alerts: [{ active: true, alertId: fault.alert.alertId, evaluating: true }] });

    // One occurrence of each: model_unavailable raised once while it stood, the rule's alert never raised again.
    const mine = recorder.unique().filter((a) => a.gateway === 'gw-stale');
    expect(mine.filter((a) => a.kind === 'model_unavailable').map((a) => [a.state, a.alertId])).toEqual([
      ['raised', raised.alert.alertId], ['cleared', raised.alert.alertId],
    ]);
    expect(mine.filter((a) => a.kind === 'equipment_fault').map((a) => [a.state, a.alertId])).toEqual([['raised', fault.alert.alertId]]);
    expectValidPayloads(mine);
  });

  it('bad quality (an OPC UA sensor failure): raised within afterMs with the reason, cleared when the value is good again', { timeout: 60_000 }, async () => {
    const server = await OpcuaTestServer.start({
      securityModes: ['None'],
      variables: [{ name: 'A', dataType: 'Double', value: 0.1 }, { name: 'B', dataType: 'Double', value: 10 }],
    });
    cleanup.push(() => server.dispose());
    const gw = await startGateway('gw-bad', `opcua:
  - name: plc
    endpoint: ${server.endpoint}
    security: { mode: None, policy: None }
    publishingIntervalMs: 100
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }
    tags:
      - { tag: press2.a, nodeId: "${server.stableNodeId('A')}", samplingIntervalMs: 100 }
      - { tag: press2.b, nodeId: "${server.stableNodeId('B')}", samplingIntervalMs: 100 }
${sinkOn(`{ name: alerts, url: "${alertBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }`)}
models:
  - name: press2
    file: ${JSON.stringify(MODEL)}
    inputs: [press2.a, press2.b]
    window: { samples: 4, periodMs: 200, latenessMs: 200 }
    schedule: { everyMs: 100 }
    watch: false
    alert: { kind: equipment_fault, severity: major, raiseAbove: 0.8, clearBelow: 0.5 }
    unavailable: { afterMs: ${AFTER_MS} }
`);
    await pollHealth(gw, (h) => h.body.components['model/press2']?.state === 'up', 'the model up');
    // A fresh gateway (no history in the buffer) fills its first window only after the OPC UA session is up plus the
    // window span and the lateness, which here can take longer than afterMs: a model_unavailable raised during that
    // warm-up is legitimate and must be cleared by the first evaluated window.
    const warmUp = recorder.unique().find((a) => a.gateway === 'gw-bad' && a.kind === 'model_unavailable' && a.state === 'raised');
    if (warmUp) await nextAlert((a) => a.alertId === warmUp.alertId && a.state === 'cleared', 'the warm-up model_unavailable cleared');
    const from = recorder.received.length;
    const badAt = Date.now();
    server.setValue('A', 0.1, { status: 'BadSensorFailure' });
    const raised = await nextAlert((a) => a.kind === 'model_unavailable' && a.state === 'raised', 'model_unavailable raised', from);
    const after = raised.at - badAt;
    expect(after).toBeGreaterThanOrEqual(AFTER_MS - 50);
    // The bad sample reaches the gateway within a publishing interval; the last good window ends before it.
    expect(after).toBeLessThan(AFTER_MS + 200 + 200 + SLACK_MS);
    expect(raised.alert).toMatchObject({ kind: 'model_unavailable', severity: 'major', model: { name: 'press2' } });
    expect(raised.alert.unevaluatedAlerts).toBeUndefined();

    const down = await pollHealth(gw, (h) => h.body.components['model/press2']?.state === 'down', 'the model down in /healthz');
    expect(down.body.components['model/press2']!.reason).toMatch(/^model_unavailable: cannot infer \(.*(missing or bad|no good sample).*\) since /);
    expect(down.body.components['model/press2']!.details).toMatchObject({ unavailable: { alertId: raised.alert.alertId } });

    server.setValue('A', 0.2);
    const cleared = await nextAlert((a) => a.kind === 'model_unavailable' && a.state === 'cleared', 'model_unavailable cleared', from);
    expect(cleared.alert).toMatchObject({ alertId: raised.alert.alertId, raisedAt: raised.alert.raisedAt });
    await pollHealth(gw, (h) => h.body.components['model/press2']?.state === 'up', 'the model up again');
    const since = new Set(recorder.received.slice(from).map((r) => r.alert.eventId));
    const mine = recorder.unique().filter((a) => a.gateway === 'gw-bad');
    expect(mine.filter((a) => since.has(a.eventId)).map((a) => [a.kind, a.state, a.alertId])).toEqual([
      ['model_unavailable', 'raised', raised.alert.alertId], ['model_unavailable', 'cleared', raised.alert.alertId],
    ]);
    expectValidPayloads(mine);
  });
});

describe('source_unavailable', () => {
  it('an MQTT source whose broker goes away and an OPC UA server nobody listens for: raised on the alert broker, cleared when they are back', { timeout: 60_000 }, async () => {
    const deviceBroker = await Mosquitto.start({ persistence: false });
    cleanup.push(() => deviceBroker.dispose());
    const plcPort = await freePort();
    const from = recorder.received.length;
    const gw = await startGateway('gw-sources', `opcua:
  - name: dead-plc
    endpoint: opc.tcp://127.0.0.1:${plcPort}
    security: { mode: None, policy: None }
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }
    requestTimeoutMs: 2000
    tags:
      - { tag: press3.a, nodeId: "nsu=urn:lineguard:test:sim;s=A" }
${sinkOn(`{ name: alerts, url: "${alertBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }, ` +
    `{ name: devices, url: "${deviceBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }`)}
  sources:
    - name: devices
      broker: devices
      topics: [${topicRoot}/devices/#]
      values: [{ tag: "dev.{3}", pointer: "" }]
`);
    const startedAt = (gw.daemon.lines.find((l) => l.msg === 'gateway started')?.time as number | undefined) ?? Date.now();

    // Unreachable since start: 'starting' is as silent as 'down'.
    const plcDown = await nextAlert((a) => a.kind === 'source_unavailable' && a.source === 'opcua/dead-plc' && a.state === 'raised', 'source_unavailable of opcua/dead-plc', from);
    expect(plcDown.alert.ts - startedAt).toBeGreaterThanOrEqual(AFTER_MS - 50);
    expect(plcDown.at - startedAt).toBeLessThan(AFTER_MS + SOURCE_CHECK_MS + SLACK_MS);
    expect(plcDown.alert).toMatchObject({ gateway: 'gw-sources', severity: 'major', raisedAt: plcDown.alert.ts });
    expect(plcDown.alert.model).toBeUndefined();

    await pollHealth(gw, (h) => h.body.components['mqtt-source/devices']?.state === 'up', 'the MQTT source up');
    const stoppedAt = Date.now();
    await deviceBroker.stop();
    const mqttDown = await nextAlert((a) => a.kind === 'source_unavailable' && a.source === 'mqtt-source/devices' && a.state === 'raised', 'source_unavailable of mqtt-source/devices', from);
    expect(mqttDown.at - stoppedAt).toBeGreaterThanOrEqual(AFTER_MS - 50);
    expect(mqttDown.at - stoppedAt).toBeLessThan(AFTER_MS + SOURCE_CHECK_MS + SLACK_MS);
    expect(mqttDown.alert.message).toMatch(/mqtt-source\/devices/);
    const health = await gw.healthz();
    expect(health.body.components['mqtt-source/devices']).toMatchObject({ state: 'down', reason: expect.any(String) });
    expect(health.body.components['source-watch']?.details).toMatchObject({ unavailable: expect.arrayContaining(['opcua/dead-plc', 'mqtt-source/devices']) });

    await deviceBroker.start();
    const mqttBack = await nextAlert((a) => a.kind === 'source_unavailable' && a.source === 'mqtt-source/devices' && a.state === 'cleared', 'source_unavailable of mqtt-source/devices cleared', from);
    expect(mqttBack.alert).toMatchObject({ alertId: mqttDown.alert.alertId, raisedAt: mqttDown.alert.raisedAt });

    // The PLC comes up where the gateway has been knocking.
    const plc = await OpcuaTestServer.start({ port: plcPort, securityModes: ['None'], variables: [{ name: 'A', dataType: 'Double', value: 1 }] });
    cleanup.push(() => plc.dispose());
    const plcBack = await nextAlert((a) => a.kind === 'source_unavailable' && a.source === 'opcua/dead-plc' && a.state === 'cleared', 'source_unavailable of opcua/dead-plc cleared', from, 30_000);
    expect(plcBack.alert).toMatchObject({ alertId: plcDown.alert.alertId, raisedAt: plcDown.alert.raisedAt });

    const mine = recorder.unique().filter((a) => a.gateway === 'gw-sources');
    for (const source of ['opcua/dead-plc', 'mqtt-source/devices']) {
      expect(mine.filter((a) => a.source === source).map((a) => a.state), source).toEqual(['raised', 'cleared']);
    }
    expectValidPayloads(mine);
  });
});
