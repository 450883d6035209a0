import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../../src/core/alert.js';
import { AlertRecorder } from '../../support/alert-recorder.js';
import { alertSchemaErrors } from '../../support/alert-schema.js';
import { GatewayRun } from '../../support/gateway-run.js';
import { Mosquitto } from '../../support/mosquitto.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';

/**
 * "Silence is not health" (issue 12, item 3) for models, as a process: `lineguard run` raises `model_unavailable`
 * through the outbox when a model's inputs go stale (the device stops publishing) or go bad (an OPC UA sensor
 * failure), within `models[].unavailable.afterMs`, shows the model down in /healthz with the reason, keeps the
 * occurrence across a SIGKILL, and clears the same occurrence when the inputs come back. Every alert received
 * validates against the payload schema of docs/alert-payload.md. (source_unavailable: source-unavailable.test.ts.)
 */
const MODEL = path.resolve('test/fixtures/models/last-value.onnx');
const AFTER_MS = 2000;
/** window.maxHoldMs of the stale-inputs model: how long a device's last values count as current. */
const HOLD_MS = 1000;
/** Room for a loaded 2-core machine: process scheduling, the sink's publish, the broker's delivery. */
const SLACK_MS = 2000;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-model-unavailable-'));
const topicRoot = `lineguard-model-unavailable-${process.pid}`;

let alertBroker: Mosquitto;
let recorder: AlertRecorder;
const cleanup: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  alertBroker = await Mosquitto.start({ persistence: false });
  recorder = await AlertRecorder.start(alertBroker.url, `model-unavailable-sub-${process.pid}`, `${topicRoot}/+/alerts/#`);
}, 30_000);

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

afterAll(async () => {
  await recorder?.close();
  await alertBroker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes the config of gateway `id` (its own state dir) and runs it. */
async function startGateway(id: string, body: string): Promise<GatewayRun> {
  const file = path.join(dir, `${id}.yaml`);
  writeFileSync(file, `gateway: { id: ${id}, stateDir: ${JSON.stringify(path.join(dir, id))} }
http: { port: 0 }
mqtt:
  brokers: [{ name: alerts, url: "${alertBroker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }]
  alerts: { broker: alerts, topic: "${topicRoot}/{gateway}/alerts/{model}", statusTopic: "${topicRoot}/{gateway}/status" }
${body}`);
  return runGateway(file);
}

async function runGateway(file: string): Promise<GatewayRun> {
  const gw = await GatewayRun.start(file);
  cleanup.push(() => gw.kill());
  return gw;
}

/** A device publishing JSON rows `{a, b, ts}` every `everyMs` on `topic`, with `a` settable, until stopped. */
async function device(topic: string, everyMs = 100): Promise<{ a: number; start(): void; stop(): number }> {
  const client: MqttClient = await mqtt.connectAsync(alertBroker.url, { clientId: `model-unavailable-dev-${process.pid}`, clean: true });
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

function expectValidPayloads(events: AlertEvent[]): void {
  const problems = events.flatMap((e) => alertSchemaErrors(e).map((m) => `${e.kind} ${e.state} ${e.eventId}: ${m}`));
  expect(problems).toEqual([]);
}

describe('model_unavailable', () => {
  it('stale inputs (the device stops): raised within hold + afterMs with the standing alert unevaluated, /healthz down with the reason, kept across a SIGKILL, cleared when rows come back', { timeout: 60_000 }, async () => {
    const from = recorder.received.length;
    const dev = await device(`${topicRoot}/stale/press1/data`);
    dev.a = 0.95;
    dev.start();
    const gw = await startGateway('gw-stale', `  sources:
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
    window: { samples: 4, latenessMs: 200, maxHoldMs: ${HOLD_MS} }
    schedule: { everyMs: 100 }
    watch: false
    alert: { kind: equipment_fault, severity: major, raiseAbove: 0.8, clearBelow: 0.5 }
    unavailable: { afterMs: ${AFTER_MS}, severity: critical }
`);
    // The rule raises first: that alert then stands unevaluated while the model is blind.
    const fault = await recorder.next((a) => a.kind === 'equipment_fault' && a.state === 'raised' && a.model?.name === 'press', 'the rule alert', from);
    await gw.pollHealth((h) => h.body.components['model/press']?.state === 'up', 'the model up');

    const lastRow = dev.stop();
    const raised = await recorder.next((a) => a.kind === 'model_unavailable' && a.state === 'raised', 'model_unavailable raised', from);
    const after = raised.at - lastRow;
    // A device that sends rarely is not unavailable while its last values are within their hold: the inputs are
    // stale once the hold is over, and model_unavailable comes afterMs later — not before, and not much after.
    // The hold is checked at each scheduler step (schedule.everyMs 100): the last check that still saw the values
    // fresh can be up to one step before the hold ends, and afterMs counts from it.
    expect(after).toBeGreaterThanOrEqual(HOLD_MS + AFTER_MS - 50 - 100);
    expect(after).toBeLessThan(HOLD_MS + AFTER_MS + 200 + SLACK_MS);
    expect(raised.alert).toMatchObject({
      state: 'raised', kind: 'model_unavailable', severity: 'critical', gateway: 'gw-stale', asset: 'stale-line/press1',
      model: { name: 'press' }, unevaluatedAlerts: [fault.alert.alertId],
    });
    expect(raised.alert.raisedAt).toBe(raised.alert.ts);
    expect(raised.alert.message).toMatch(/model press/);

    const down = await gw.pollHealth((h) => h.body.components['model/press']?.state === 'down', 'the model down in /healthz');
    const model = down.body.components['model/press']!;
    expect(model.reason).toMatch(/^model_unavailable: cannot infer \(.+\) since /);
    expect(model.reason).toMatch(/no new sample of the input tags .* \(longer than window\.maxHoldMs 1000 ms\)/);
    expect(model.details).toMatchObject({
      unavailable: { alertId: raised.alert.alertId },
      alerts: [{ rule: 'alert', active: true, alertId: fault.alert.alertId, evaluating: false }],
    });
    // The only model is down: the gateway cannot do its job (README "Observability").
    expect(down.code).toBe(503);
    expect(down.body.status).toBe('down');
    expect(down.body.reasons.join('\n')).toMatch(/model\/press/);

    // A crash while it stands neither raises it a second time nor forgets it: the restarted gateway still shows the
    // same occurrence, and clears it when rows come back.
    await gw.kill();
    const again = await runGateway(gw.file);
    const stillDown = await again.pollHealth((h) => h.body.components['model/press']?.state === 'down', 'the model still down after the restart');
    expect(stillDown.body.components['model/press']!.details).toMatchObject({ unavailable: { alertId: raised.alert.alertId } });

    dev.start();
    const cleared = await recorder.next((a) => a.kind === 'model_unavailable' && a.state === 'cleared', 'model_unavailable cleared', from);
    expect(cleared.alert).toMatchObject({ alertId: raised.alert.alertId, raisedAt: raised.alert.raisedAt, model: { name: 'press' } });
    expect(cleared.alert.eventId).not.toBe(raised.alert.eventId);
    expect(cleared.alert.ts).toBeGreaterThanOrEqual(raised.alert.ts);
    expect(cleared.alert.clearedAt).toBe(cleared.alert.ts);
    const up = await again.pollHealth((h) => h.body.components['model/press']?.state === 'up', 'the model up again');
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
    await gw.pollHealth((h) => h.body.components['model/press2']?.state === 'up', 'the model up');
    // A fresh gateway (no history in the buffer) fills its first window only after the OPC UA session is up plus the
    // window span and the lateness, which here can take longer than afterMs: a model_unavailable raised during that
    // warm-up is legitimate and must be cleared by the first evaluated window.
    const warmUp = recorder.unique().find((a) => a.gateway === 'gw-bad' && a.kind === 'model_unavailable' && a.state === 'raised');
    if (warmUp) await recorder.next((a) => a.alertId === warmUp.alertId && a.state === 'cleared', 'the warm-up model_unavailable cleared');
    const from = recorder.received.length;
    const badAt = Date.now();
    server.setValue('A', 0.1, { status: 'BadSensorFailure' });
    const raised = await recorder.next((a) => a.kind === 'model_unavailable' && a.state === 'raised', 'model_unavailable raised', from);
    const after = raised.at - badAt;
    expect(after).toBeGreaterThanOrEqual(AFTER_MS - 50);
    // The bad sample reaches the gateway within a publishing interval; the last good window ends before it.
    expect(after).toBeLessThan(AFTER_MS + 200 + 200 + SLACK_MS);
    expect(raised.alert).toMatchObject({ kind: 'model_unavailable', severity: 'major', model: { name: 'press2' } });
    expect(raised.alert.unevaluatedAlerts).toBeUndefined();

    const down = await gw.pollHealth((h) => h.body.components['model/press2']?.state === 'down', 'the model down in /healthz');
    expect(down.body.components['model/press2']!.reason).toMatch(/^model_unavailable: cannot infer \(.*(missing or bad|no good sample).*\) since /);
    expect(down.body.components['model/press2']!.details).toMatchObject({ unavailable: { alertId: raised.alert.alertId } });

    server.setValue('A', 0.2);
    const cleared = await recorder.next((a) => a.kind === 'model_unavailable' && a.state === 'cleared', 'model_unavailable cleared', from);
    expect(cleared.alert).toMatchObject({ alertId: raised.alert.alertId, raisedAt: raised.alert.raisedAt });
    await gw.pollHealth((h) => h.body.components['model/press2']?.state === 'up', 'the model up again');
    const since = new Set(recorder.received.slice(from).map((r) => r.alert.eventId));
    const mine = recorder.unique().filter((a) => a.gateway === 'gw-bad');
    expect(mine.filter((a) => since.has(a.eventId)).map((a) => [a.kind, a.state, a.alertId])).toEqual([
      ['model_unavailable', 'raised', raised.alert.alertId], ['model_unavailable', 'cleared', raised.alert.alertId],
    ]);
    expectValidPayloads(mine);
  });
});
