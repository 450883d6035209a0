import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AlertRecorder } from '../../support/alert-recorder.js';
import { alertSchemaErrors } from '../../support/alert-schema.js';
import { GatewayRun } from '../../support/gateway-run.js';
import { freePort, Mosquitto } from '../../support/mosquitto.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';

/**
 * "Silence is not health" (issue 12, item 3) for sources, as a process: `lineguard run` raises `source_unavailable`
 * for an MQTT source whose broker goes away and for an OPC UA server nothing listens for, within
 * `gateway.sourceUnavailable.afterMs`, on the alert broker (another broker than the devices'), shows it in /healthz,
 * and clears the same occurrence when they are back. Every alert received validates against docs/alert-payload.md.
 */
const AFTER_MS = 2000;
/** The source watch looks at the sources once a second. */
const SOURCE_CHECK_MS = 1000;
/** Room for a loaded 2-core machine: process scheduling, the sink's publish, the broker's delivery. */
const SLACK_MS = 2000;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-source-unavailable-'));
const topicRoot = `lineguard-source-unavailable-${process.pid}`;

let alertBroker: Mosquitto;
let recorder: AlertRecorder;
const cleanup: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  alertBroker = await Mosquitto.start({ persistence: false });
  recorder = await AlertRecorder.start(alertBroker.url, `source-unavailable-sub-${process.pid}`, `${topicRoot}/+/alerts/#`);
}, 30_000);

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

afterAll(async () => {
  await recorder?.close();
  await alertBroker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('source_unavailable', () => {
  it('an MQTT source whose broker goes away and an OPC UA server nobody listens for: raised on the alert broker, cleared when they are back', { timeout: 60_000 }, async () => {
    const deviceBroker = await Mosquitto.start({ persistence: false });
    cleanup.push(() => deviceBroker.dispose());
    // The PLC is off: nothing listens on its port until it is started below.
    const plcPort = await freePort();
    const from = recorder.received.length;
    const file = path.join(dir, 'gw-sources.yaml');
    writeFileSync(file, `gateway:
  id: gw-sources
  stateDir: ${JSON.stringify(path.join(dir, 'gw-sources'))}
  sourceUnavailable: { afterMs: ${AFTER_MS} }
http: { port: 0 }
opcua:
  - name: dead-plc
    endpoint: opc.tcp://127.0.0.1:${plcPort}
    security: { mode: None, policy: None }
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }
    requestTimeoutMs: 2000
    tags:
      - { tag: press3.a, nodeId: "nsu=urn:lineguard:test:sim;s=A" }
mqtt:
  brokers:
    - { name: alerts, url: "${alertBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }
    - { name: devices, url: "${deviceBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }
  alerts: { broker: alerts, topic: "${topicRoot}/{gateway}/alerts/{model}", statusTopic: "${topicRoot}/{gateway}/status" }
  sources:
    - name: devices
      broker: devices
      topics: [${topicRoot}/devices/#]
      values: [{ tag: "dev.{3}", pointer: "" }]
`);
    const gw = await GatewayRun.start(file);
    cleanup.push(() => gw.kill());
    const startedAt = (gw.daemon.lines.find((l) => l.msg === 'gateway started')?.time as number | undefined) ?? Date.now();

    // Unreachable since start: 'starting' is as silent as 'down'.
    const plcDown = await recorder.next((a) => a.kind === 'source_unavailable' && a.source === 'opcua/dead-plc' && a.state === 'raised', 'source_unavailable of opcua/dead-plc', from);
    expect(plcDown.alert.ts - startedAt).toBeGreaterThanOrEqual(AFTER_MS - 50);
    expect(plcDown.at - startedAt).toBeLessThan(AFTER_MS + SOURCE_CHECK_MS + SLACK_MS);
    expect(plcDown.alert).toMatchObject({ gateway: 'gw-sources', severity: 'major', raisedAt: plcDown.alert.ts });
    expect(plcDown.alert.model).toBeUndefined();

    await gw.pollHealth((h) => h.body.components['mqtt-source/devices']?.state === 'up', 'the MQTT source up');
    const stoppedAt = Date.now();
    await deviceBroker.stop();
    const mqttDown = await recorder.next((a) => a.kind === 'source_unavailable' && a.source === 'mqtt-source/devices' && a.state === 'raised', 'source_unavailable of mqtt-source/devices', from);
    expect(mqttDown.at - stoppedAt).toBeGreaterThanOrEqual(AFTER_MS - 50);
    expect(mqttDown.at - stoppedAt).toBeLessThan(AFTER_MS + SOURCE_CHECK_MS + SLACK_MS);
    expect(mqttDown.alert.message).toMatch(/mqtt-source\/devices/);
    const health = await gw.healthz();
    expect(health.body.components['mqtt-source/devices']).toMatchObject({ state: 'down', reason: expect.any(String) });
    expect(health.body.components['source-watch']?.details).toMatchObject({ unavailable: expect.arrayContaining(['opcua/dead-plc', 'mqtt-source/devices']) });

    await deviceBroker.start();
    const mqttBack = await recorder.next((a) => a.kind === 'source_unavailable' && a.source === 'mqtt-source/devices' && a.state === 'cleared', 'source_unavailable of mqtt-source/devices cleared', from);
    expect(mqttBack.alert).toMatchObject({ alertId: mqttDown.alert.alertId, raisedAt: mqttDown.alert.raisedAt });

    // The PLC comes up where the gateway has been knocking.
    const plc = await OpcuaTestServer.start({ port: plcPort, securityModes: ['None'], variables: [{ name: 'A', dataType: 'Double', value: 1 }] });
    cleanup.push(() => plc.dispose());
    const plcBack = await recorder.next((a) => a.kind === 'source_unavailable' && a.source === 'opcua/dead-plc' && a.state === 'cleared', 'source_unavailable of opcua/dead-plc cleared', from, 30_000);
    expect(plcBack.alert).toMatchObject({ alertId: plcDown.alert.alertId, raisedAt: plcDown.alert.raisedAt });

    const mine = recorder.unique().filter((a) => a.gateway === 'gw-sources');
    for (const source of ['opcua/dead-plc', 'mqtt-source/devices']) {
      expect(mine.filter((a) => a.source === source).map((a) => a.state), source).toEqual(['raised', 'cleared']);
    }
    expect(mine.flatMap((e) => alertSchemaErrors(e).map((m) => `${e.source} ${e.state}: ${m}`))).toEqual([]);
  });
});
