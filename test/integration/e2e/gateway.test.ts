import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../../src/core/alert.js';
import { loadAi4i, type Ai4iRow } from '../../../src/demo/datasets.js';
import { DEMO_NAMESPACE, SimulatedLine } from '../../../src/demo/simulated-line.js';
import { readModelFile } from '../../../src/runtime/model-file.js';
import { DaemonProcess } from '../../support/daemon-process.js';

/**
 * The whole gateway as a process: `lineguard run` against a node-opcua server replaying the AI4I data, a real
 * Mosquitto, the shipped fault model. A known fault sequence from the data must come out as a raised alert on MQTT
 * with the documented payload, then its clear; SIGHUP with a new threshold takes effect without dropping the OPC UA
 * session; systemd hears READY and watchdog pings; SIGTERM ends it with exit 0 within 10 s.
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const MODEL = path.resolve('models/ai4i-fault/model.onnx');
const TAGS = ['press1.air_temperature', 'press1.process_temperature', 'press1.rotational_speed', 'press1.torque', 'press1.tool_wear', 'press1.product_type'];
const VARIABLES = ['AirTemperature', 'ProcessTemperature', 'RotationalSpeed', 'Torque', 'ToolWear', 'ProductType'];
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-e2e-'));
const configFile = path.join(dir, 'lineguard.yaml');
const topicRoot = `lineguard-e2e-${process.pid}`;

let rows: Ai4iRow[];
let faultIndex: number;
let threshold: { raiseAbove: number; clearBelow: number };
let line: SimulatedLine;
let subscriber: MqttClient;
const alerts: AlertEvent[] = [];
let daemon: DaemonProcess;
let notifyLog: string;

function features(row: Ai4iRow): number[] {
  return [row.airTemperatureK, row.processTemperatureK, row.rotationalSpeedRpm, row.torqueNm, row.toolWearMin, { L: 0, M: 1, H: 2 }[row.type]];
}

/** The first failure of the held-out part that the shipped model flags, followed by rows it does not flag. */
async function findKnownFault(): Promise<number> {
  const model = await readModelFile(MODEL);
  const meta = model.metadata!;
  const session = await ort.InferenceSession.create(MODEL, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const score = async (row: Ai4iRow): Promise<number> => {
    const x = features(row).map((v, i) => (v - meta.inputs[i]!.mean) / meta.inputs[i]!.std);
    const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x), [1, 1, 6]) });
    return (out.failure_probability!.data as Float32Array)[0]!;
  };
  try {
    for (let i = 8000; i < rows.length - 10; i++) {
      if (!rows[i]!.machineFailure) continue;
      if ((await score(rows[i]!)) <= threshold.raiseAbove) continue;
      let quietAfter = true;
      for (let k = 1; k <= 6 && quietAfter; k++) quietAfter = (await score(rows[i + k]!)) < threshold.clearBelow;
      let quietBefore = true;
      for (let k = 1; k <= 8 && quietBefore; k++) quietBefore = (await score(rows[i - k]!)) < threshold.clearBelow;
      if (quietAfter && quietBefore) return i;
    }
    throw new Error('no isolated fault the model flags in the test part of the data');
  } finally {
    await session.release();
  }
}

function config(rule: { raiseAbove: number; clearBelow: number }, endpoint: string): string {
  return `gateway: { id: e2e-gateway, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }
http: { port: 0 }
opcua:
  - name: press-plc
    endpoint: ${endpoint}
    security: { mode: None, policy: None }
    publishingIntervalMs: 50
    tags:
${VARIABLES.map((v, i) => `      - { tag: ${TAGS[i]}, nodeId: "nsu=${DEMO_NAMESPACE};s=Press1.${v}", samplingIntervalMs: 50 }`).join('\n')}
mqtt:
  brokers: [{ name: site, url: "${MQTT_URL}" }]
  alerts: { broker: site, topic: "${topicRoot}/{gateway}/alerts/{model}", statusTopic: "${topicRoot}/{gateway}/status" }
buffer: { flushIntervalMs: 50 }
models:
  - name: press-fault
    file: ${JSON.stringify(MODEL)}
    asset: e2e-line/press1
    executionProviders: [cuda, cpu]
    inputs: [${TAGS.join(', ')}]
    schedule: { everyMs: 50 }
    alert: { kind: equipment_fault, severity: major, raiseAbove: ${rule.raiseAbove}, clearBelow: ${rule.clearBelow}, forSamples: 1 }
`;
}

async function waitForAlert(match: (a: AlertEvent) => boolean, timeoutMs = 30_000): Promise<AlertEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = alerts.find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching alert within ${timeoutMs} ms; got ${JSON.stringify(alerts.map((a) => [a.state, a.output.value]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  rows = loadAi4i(path.resolve('models/data/ai4i2020/ai4i2020.csv'));
  const meta = (await readModelFile(MODEL)).metadata!;
  const recommended = meta.recommendedAlert as { raiseAbove: number; clearBelow: number };
  threshold = { raiseAbove: recommended.raiseAbove, clearBelow: recommended.clearBelow };
  faultIndex = await findKnownFault();

  // The replay starts a few rows before the fault and runs slowly enough that every row is inferred.
  line = new SimulatedLine({ pkiDir: path.join(dir, 'server-pki'), speed: 3, press: { rows, startIndex: faultIndex - 8 }, engines: [] });
  await line.start();
  writeFileSync(configFile, config(threshold, line.endpointUrl));

  subscriber = mqtt.connect(MQTT_URL, { clientId: `e2e-sub-${process.pid}`, clean: true });
  await new Promise<void>((resolve, reject) => {
    subscriber.once('connect', () => subscriber.subscribe(`${topicRoot}/+/alerts/#`, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  });
  subscriber.on('message', (_t, payload) => alerts.push(JSON.parse(payload.toString()) as AlertEvent));

  // systemd is not PID 1 here: a stand-in systemd-notify on PATH records what the daemon tells it.
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  notifyLog = path.join(dir, 'notify.log');
  writeFileSync(path.join(bin, 'systemd-notify'), `#!/bin/sh\necho "$@" >> ${JSON.stringify(notifyLog)}\n`);
  chmodSync(path.join(bin, 'systemd-notify'), 0o755);
  daemon = new DaemonProcess(['run', '--config', configFile], {
    PATH: `${bin}:${process.env.PATH}`, NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '1000000',
  });
  await daemon.waitForMessage('lineguard ready', 90_000);
  // Replay the known fault only now that the gateway is listening.
  line.seek(faultIndex - 8);
}, 150_000);

afterAll(async () => {
  await daemon?.kill();
  await subscriber?.endAsync(true);
  await line?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the gateway end to end', () => {
  it('a fault in the replayed data is raised on MQTT with the documented payload, then cleared', { timeout: 60_000 }, async () => {
    const raised = await waitForAlert((a) => a.state === 'raised' && a.model?.name === 'press-fault', 30_000);
    const row = rows[faultIndex]!;
    expect(raised).toMatchObject({
      schema: 1, state: 'raised', kind: 'equipment_fault', severity: 'major', gateway: 'e2e-gateway', asset: 'e2e-line/press1',
      provider: 'cpu', output: { name: 'failure_probability' }, rule: { raiseAbove: threshold.raiseAbove, clearBelow: threshold.clearBelow },
    });
    expect(raised.model?.version).toMatch(/^1\.0\.0\+[0-9a-f]{12}$/);
    expect(raised.output.value).toBeGreaterThan(threshold.raiseAbove);
    expect(typeof raised.eventId).toBe('string');
    expect(typeof raised.message).toBe('string');
    // The contributing values are the fault row's own.
    const newest = TAGS.map((t) => raised.inputs[t]!.at(-1)![1]);
    expect(newest).toEqual(features(row).map((v) => expect.closeTo(v, 6)));

    const cleared = await waitForAlert((a) => a.state === 'cleared' && a.alertId === raised.alertId, 30_000);
    expect(cleared.eventId).not.toBe(raised.eventId);
    expect(cleared.output.value).toBeLessThan(threshold.clearBelow);
    expect(cleared.raisedAt).toBe(raised.raisedAt);
  });

  it('systemd hears READY once the sources are up, and watchdog pings', async () => {
    const deadline = Date.now() + 5_000;
    while (!(readFileSync(notifyLog, 'utf8').match(/WATCHDOG=1/g)?.length ?? 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const notes = readFileSync(notifyLog, 'utf8');
    expect(notes).toMatch(new RegExp(`--pid=${daemon.pid} --ready`));
    expect(notes).toContain('WATCHDOG=1');
  });

  it('SIGHUP with a changed threshold takes effect without dropping the OPC UA session', async () => {
    const from = daemon.lines.length;
    const before = alerts.length;
    // A threshold every output passes: the next inference raises.
    writeFileSync(configFile, config({ raiseAbove: -1, clearBelow: -2 }, line.endpointUrl));
    daemon.signal('SIGHUP');
    const reloaded = await daemon.waitForMessage('config reloaded');
    expect(reloaded.restarted).toEqual(['model/press-fault']);
    const raised = await waitForAlert((a) => alerts.indexOf(a) >= before && a.state === 'raised' && a.rule.raiseAbove === -1);
    expect(raised.model?.name).toBe('press-fault');
    const since = daemon.since(from);
    expect(since.filter((l) => l.component === 'opcua')).toEqual([]);
  });

  it('SIGTERM stops everything within 10 s with exit 0', async () => {
    const t0 = Date.now();
    daemon.signal('SIGTERM');
    const exit = await daemon.exit;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(readFileSync(notifyLog, 'utf8')).toContain('STOPPING=1');
  });
});
