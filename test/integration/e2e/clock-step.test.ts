import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../../src/core/alert.js';
import { loadConfigFile } from '../../../src/daemon/config/load.js';
import { Daemon } from '../../../src/daemon/daemon.js';
import { createLogger, SecretRedactor } from '../../../src/daemon/logger.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { fixture } from '../../unit/runtime/runtime-context.js';

/**
 * A PLC clock that steps, or is in the wrong year (issue 11): the gateway counts the step, shows it in /healthz,
 * restarts the model's window on the new timeline within a few frames, and a fault after the step raises an alert
 * on the broker. A raise and clear stamped in 2030 followed by a corrected clock do not block the next raise.
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const PERIOD = 1000;
const HOUR = 3_600_000;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-clock-'));
const configFile = path.join(dir, 'lineguard.yaml');
const topic = `lineguard-clock-${process.pid}`;
let server: OpcuaTestServer;
let daemon: Daemon;
let sub: mqtt.MqttClient;
const alerts: AlertEvent[] = [];

/** Three PLCs: one whose clock steps back an hour, one stamped in 2030 (beyond maxSkew), one in 2030 with a huge maxSkew. */
const PLCS = [
  { name: 'step', clock: '' },
  { name: 'future', clock: '' },
  { name: 'kept', clock: 'clock: { maxSkewMs: 315360000000 }' },
] as const;

function config(): string {
  return `gateway: { id: clock-test, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }
log: { level: warn }
http: { enabled: false }
opcua:${PLCS.map((p) => `
  - name: ${p.name}
    endpoint: ${server.endpoint}
    security: { mode: None }
    publishingIntervalMs: 50
    ${p.clock}
    tags:
      - { tag: ${p.name}.a, nodeId: "${server.stableNodeId(`${p.name}_a`)}", samplingIntervalMs: 0, queueSize: 100 }
      - { tag: ${p.name}.b, nodeId: "${server.stableNodeId(`${p.name}_b`)}", samplingIntervalMs: 0, queueSize: 100 }`).join('')}
mqtt:
  brokers: [{ name: local, url: ${MQTT_URL} }]
  alerts: { broker: local, topic: "${topic}/{model}" }
models:${PLCS.map((p) => `
  - name: ${p.name}
    file: ${JSON.stringify(fixture('last-value.onnx'))}
    inputs: [${p.name}.a, ${p.name}.b]
    window: { samples: 4, periodMs: ${PERIOD}, latenessMs: 300 }
    schedule: { everyMs: 50 }
    alert: { raiseAbove: 0.8, clearBelow: 0.5, cooldownMs: 0 }`).join('')}
`;
}

/** Writes one row of a PLC at its source time `ts` (a changes, b is constant: reported once). */
function row(plc: string, ts: number, a: number): void {
  server.setValue(`${plc}_a`, a, { sourceTimestamp: new Date(ts) });
}

async function waitFor(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Rows every 100 ms of real time, one PLC second each (accelerated), alternating two values so every row is a change. */
async function replay(plc: string, fromTs: number, values: number[]): Promise<number> {
  let ts = fromTs;
  for (const v of values) {
    row(plc, ts, v);
    ts += PERIOD;
    await new Promise((r) => setTimeout(r, 100));
  }
  return ts;
}

beforeAll(async () => {
  const variables = PLCS.flatMap((p) => [
    { name: `${p.name}_a`, dataType: 'Double' as const, value: 0.1 },
    { name: `${p.name}_b`, dataType: 'Double' as const, value: 10 },
  ]);
  server = await OpcuaTestServer.start({ securityModes: ['None'], variables });
  const start = Date.now() - 60_000;
  server.setValue('step_a', 0.1, { sourceTimestamp: new Date(start) });
  server.setValue('step_b', 10, { sourceTimestamp: new Date(start) });
  for (const p of ['future', 'kept']) {
    server.setValue(`${p}_a`, 0.1, { sourceTimestamp: new Date(Date.UTC(2030, 0, 1)) });
    server.setValue(`${p}_b`, 10, { sourceTimestamp: new Date(Date.UTC(2030, 0, 1)) });
  }
  sub = await mqtt.connectAsync(MQTT_URL);
  sub.on('message', (_t, payload) => alerts.push(JSON.parse(payload.toString()) as AlertEvent));
  await sub.subscribeAsync(`${topic}/#`, { qos: 1 });
  writeFileSync(configFile, config());
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const redactor = new SecretRedactor();
  daemon = new Daemon(configFile, loaded, createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }, redactor), redactor);
  await daemon.start();
  await waitFor('sources up', () => PLCS.every((p) => daemon.component(`opcua/${p.name}`)?.health().state === 'up'), 30_000);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await sub?.endAsync();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const raises = (model: string): AlertEvent[] => alerts.filter((a) => a.model?.name === model && a.state === 'raised');
const clears = (model: string): AlertEvent[] => alerts.filter((a) => a.model?.name === model && a.state === 'cleared');
const details = (model: string): Record<string, unknown> => daemon.component(`model/${model}`)!.health().details!;

describe('a PLC clock that steps', () => {
  it('stepped back one hour: counted, in /healthz, windows resume on the new timeline, and a fault after it raises', async () => {
    let ts = Math.floor((Date.now() - 30_000) / PERIOD) * PERIOD;
    ts = await replay('step', ts, [0.1, 0.2, 0.1, 0.2, 0.1, 0.2, 0.1, 0.2]);
    await waitFor('windows before the step', () => (details('step').inferences as number) >= 3);
    const before = details('step').inferences as number;
    // The PLC's clock is set back an hour (NTP correction, battery swap).
    const stepped = ts - HOUR;
    const afterStep = await replay('step', stepped, [0.1, 0.2, 0.1, 0.2, 0.1, 0.2]);
    const clock = daemon.health().clocks!.find((c) => c.source === 'opcua/step')!;
    expect(clock.steps).toBe(1);
    expect(clock.lastStep!.deltaMs).toBeLessThan(-HOUR + 10 * PERIOD);
    expect(details('step').clockSteps).toBe(1);
    // Windows go on, on the new timeline, within a few frames (the window is 4 frames).
    await waitFor('windows on the new timeline', () => {
      const end = Date.parse(String((details('step').window as { lastEnd: string }).lastEnd));
      return end >= stepped + 4 * PERIOD && end < stepped + HOUR / 2;
    });
    expect(details('step').inferences as number).toBeGreaterThan(before);
    // A fault after the step raises, stamped on the new timeline.
    await replay('step', afterStep, [0.95, 0.96, 0.97, 0.98]);
    await waitFor('the raise on the broker', () => raises('step').length === 1);
    expect(raises('step')[0]!.ts).toBeGreaterThanOrEqual(afterStep);
    expect(raises('step')[0]!.ts).toBeLessThan(afterStep + 10 * PERIOD);
  });

  it('a raise and clear stamped in 2030, then a corrected clock: the next fault raises (restamped by maxSkew)', async () => {
    const y2030 = Date.UTC(2030, 0, 1);
    let ts = await replay('future', y2030, [0.1, 0.2, 0.95, 0.96, 0.97, 0.98, 0.99]);
    await waitFor('the 2030 raise', () => raises('future').length === 1);
    ts = await replay('future', ts, [0.1, 0.2, 0.1, 0.2, 0.1]);
    await waitFor('the 2030 clear', () => clears('future').length === 1);
    // The PLC was stamping 2030: the gateway restamped those samples with their arrival time, and said so.
    expect(raises('future')[0]!.ts).toBeLessThan(Date.now() + 60_000);
    expect(daemon.health().clocks!.find((c) => c.source === 'opcua/future')!.future).toBeGreaterThan(5);
    // Clock corrected: right time from now on, and a new fault.
    const now = Math.floor(Date.now() / PERIOD) * PERIOD;
    await replay('future', now, [0.1, 0.2, 0.95, 0.96, 0.97, 0.98, 0.99]);
    await waitFor('the raise after the correction', () => raises('future').length === 2);
    expect(ts).toBeGreaterThan(y2030);
  });

  it('a raise and clear stamped in 2030 kept as source time (huge maxSkew), then a corrected clock: the next fault raises', async () => {
    const y2030 = Date.UTC(2030, 0, 1);
    const ts = await replay('kept', y2030, [0.1, 0.2, 0.95, 0.96, 0.97, 0.98, 0.99]);
    await waitFor('the 2030 raise', () => raises('kept').length === 1);
    expect(raises('kept')[0]!.ts).toBeGreaterThanOrEqual(y2030);
    await replay('kept', ts, [0.1, 0.2, 0.1, 0.2, 0.1]);
    await waitFor('the 2030 clear', () => clears('kept').length === 1);
    const now = Math.floor(Date.now() / PERIOD) * PERIOD;
    await replay('kept', now, [0.1, 0.2, 0.95, 0.96, 0.97, 0.98, 0.99]);
    await waitFor('the raise after the correction', () => raises('kept').length === 2);
    // The step back from 2030 is counted; the clear of an occurrence is never before its raise.
    expect(daemon.health().clocks!.find((c) => c.source === 'opcua/kept')!.steps).toBeGreaterThanOrEqual(1);
    for (const c of clears('kept')) expect(c.ts).toBeGreaterThanOrEqual(c.raisedAt);
  });
});
