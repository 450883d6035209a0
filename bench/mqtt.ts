/**
 * MQTT benchmark, against a private Mosquitto started for the run (no queue limits, so nothing is dropped):
 *
 * - `mqtt.alert_drain`: alerts/s moved from the SQLite outbox to the broker by MqttAlertSink (QoS 1, PUBACK, ack in
 *   the outbox), beside a bare mqtt.js client publishing the same payloads QoS 1 with the same in-flight window.
 * - `mqtt.ingest`: samples/s turned into TagSamples by MqttSource, beside a bare mqtt.js subscriber parsing the same
 *   JSON and extracting the same values. Both read the same backlog of QoS 1 messages the broker queued for their
 *   persistent session, so the publisher's speed does not limit either.
 *
 * Each side runs ROUNDS times, alternating; the median is reported. Env: BENCH_MQTT_ALERTS (default 20,000),
 * BENCH_MQTT_MESSAGES (default 40,000), MOSQUITTO_BIN (default /usr/sbin/mosquitto).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { SqliteAlertOutbox } from '../src/buffer/alert-outbox.js';
import { MqttAlertSink, MqttSource } from '../src/connectors/mqtt/index.js';
import type { MqttAlertSinkConfig, MqttBrokerConfig, MqttSourceConfig } from '../src/connectors/mqtt/config.js';
import { alertTopic } from '../src/connectors/mqtt/alert-topic.js';
import type { AlertEvent } from '../src/core/alert.js';
import type { ComponentContext } from '../src/core/component.js';
import { TagBus } from '../src/core/tag-bus.js';
import { result, type BenchResult, type Progress } from './result.js';

const ROUNDS = 3;
const WINDOW = 100;
const GATEWAY = 'gw-bench';
const VALUE_POINTERS = ['/vib/rms', '/vib/peak', '/temp', '/speed'] as const;

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number): number => Math.round(x);

export async function run(progress: Progress): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'lg-bench-mqtt-'));
  const broker = await startBroker(dir);
  try {
    progress(`private mosquitto on ${broker.url}`);
    return [await alertDrain(broker.url, dir, progress), await ingest(broker.url, progress)];
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ── alert drain ──────────────────────────────────────────────────────────────────────────────────────────────

function benchAlert(n: number): AlertEvent {
  const inputs: AlertEvent['inputs'] = {};
  for (let t = 0; t < 6; t++) inputs[`press1.tag${t}`] = Array.from({ length: 8 }, (_, i) => [1_714_564_800_000 + i * 100, t + i / 10]);
  return {
    schema: 1, eventId: `bench-${n}`, alertId: `occ-${n >> 1}`, state: n % 2 ? 'cleared' : 'raised', kind: 'equipment_fault',
    severity: 'major', gateway: GATEWAY, asset: 'line1/press1', model: { name: 'press-fault', version: '1.0.0', hash: 'sha256:00' },
    provider: 'cpu', output: { name: 'p_fault', value: 0.91 }, rule: { raiseAbove: 0.8, clearBelow: 0.5, forSamples: 3 },
    ts: 1_714_564_800_000 + n, raisedAt: 1_714_564_800_000 + n, inputs, message: `bench alert ${n}`,
  };
}

async function alertDrain(url: string, dir: string, progress: Progress): Promise<BenchResult> {
  const count = envInt('BENCH_MQTT_ALERTS', 20_000);
  const alerts = Array.from({ length: count }, (_, i) => benchAlert(i));
  const bytes = Buffer.byteLength(JSON.stringify(alerts[0]));
  progress(`mqtt.alert_drain: enqueueing ${count} alerts of ${bytes} bytes (each commit is fsynced)`);
  const template = join(dir, 'outbox-template.db');
  const filled = SqliteAlertOutbox.open(template, { maxAlerts: count + 1 });
  for (const a of alerts) filled.enqueue(a);
  filled.close();
  const sink: number[] = [];
  const bare: number[] = [];
  const cpu = { sink: [] as number[], bare: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    progress(`mqtt.alert_drain round ${r + 1}/${ROUNDS}: window ${WINDOW}`);
    const file = join(dir, `outbox-${r}.db`);
    copyFileSync(template, file);
    const s = await drainWithSink(url, file, alerts.length);
    sink.push(s.rate);
    cpu.sink.push(s.cpuUsPerItem);
    const b = await publishBare(url, alerts);
    bare.push(b.rate);
    cpu.bare.push(b.cpuUsPerItem);
  }
  return result('mqtt.alert_drain', round(median(sink)), 'alerts/s', 'higher', round(median(bare)), `bare mqtt.js QoS 1, ${WINDOW} in flight`, {
    alerts: count,
    payloadBytes: bytes,
    sinkRounds: sink.map(round).join(' / '),
    bareRounds: bare.map(round).join(' / '),
    sinkCpuUsPerAlert: Number(median(cpu.sink).toFixed(1)),
    bareCpuUsPerAlert: Number(median(cpu.bare).toFixed(1)),
  });
}

async function drainWithSink(url: string, file: string, count: number): Promise<{ rate: number; cpuUsPerItem: number }> {
  const outbox = SqliteAlertOutbox.open(file, { maxAlerts: count + 1 });
  if (outbox.depth() !== count) throw new Error(`outbox copy holds ${outbox.depth()} alerts, expected ${count}`);
  const ctx = context();
  const sink = new MqttAlertSink(sinkConfig(), brokerConfig(url, `sink-${Date.now()}`), ctx, outbox);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sink.start(new AbortController().signal);
  while (outbox.depth() > 0) await new Promise((r) => setTimeout(r, 2));
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  await sink.stop();
  outbox.close();
  return { rate: (count / ms) * 1000, cpuUsPerItem: (used.user + used.system) / count };
}

/** The baseline: the same payloads and topics, QoS 1, at most WINDOW unacknowledged, no outbox. */
async function publishBare(url: string, alerts: AlertEvent[]): Promise<{ rate: number; cpuUsPerItem: number }> {
  const client = await connected(url, { clientId: `bare-pub-${Date.now()}` });
  const template = sinkConfig().topic;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const send = (): void => {
      const alert = alerts[next++]!;
      client.publish(alertTopic(template, alert, GATEWAY), JSON.stringify(alert), { qos: 1 }, (err) => {
        if (err) return reject(err);
        acked++;
        if (acked === alerts.length) resolve();
        else if (next < alerts.length) send();
      });
    };
    for (let i = 0; i < Math.min(WINDOW, alerts.length); i++) send();
  });
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  await client.endAsync();
  return { rate: (alerts.length / ms) * 1000, cpuUsPerItem: (used.user + used.system) / alerts.length };
}

// ── ingest ───────────────────────────────────────────────────────────────────────────────────────────────────

function telemetry(i: number): { topic: string; payload: string } {
  return {
    topic: `bench/press${i % 20}/axis-${i % 3}/telemetry`,
    payload: JSON.stringify({ ts: 1_714_564_800_000 + i, vib: { rms: (i % 100) / 100, peak: (i % 37) / 10 }, temp: 40 + (i % 7), speed: 1480 + (i % 11), fw: 'v1.2.3' }),
  };
}

async function ingest(url: string, progress: Progress): Promise<BenchResult> {
  const messages = envInt('BENCH_MQTT_MESSAGES', 40_000);
  const samples = messages * VALUE_POINTERS.length;
  const source: number[] = [];
  const bare: number[] = [];
  const cpu = { source: [] as number[], bare: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    progress(`mqtt.ingest round ${r + 1}/${ROUNDS}: ${messages} queued messages, ${samples} samples`);
    const broker = brokerConfig(url, `lg-src-${r}-${Date.now()}`);
    const bareId = `bare-sub-${r}-${Date.now()}`;
    await queueFor(url, [`${broker.clientId}-source-bench`, bareId], 'bench/+/+/telemetry', messages);
    const s = await ingestWithSource(broker, messages);
    source.push(s.rate);
    cpu.source.push(s.cpuUsPerItem);
    const b = await ingestBare(url, bareId, messages);
    bare.push(b.rate);
    cpu.bare.push(b.cpuUsPerItem);
  }
  return result('mqtt.ingest', round(median(source)), 'samples/s', 'higher', round(median(bare)), 'bare mqtt.js subscriber + JSON.parse', {
    messages,
    valuesPerMessage: VALUE_POINTERS.length,
    sourceRounds: source.map(round).join(' / '),
    bareRounds: bare.map(round).join(' / '),
    sourceCpuUsPerSample: Number(median(cpu.source).toFixed(2)),
    bareCpuUsPerSample: Number(median(cpu.bare).toFixed(2)),
  });
}

/**
 * Makes the broker queue `count` QoS 1 messages for each of the given persistent sessions (offline). Published
 * with a sliding window: waiting for whole batches would stall on TCP delayed ACKs (~40 ms a batch).
 */
async function queueFor(url: string, clientIds: string[], filter: string, count: number): Promise<void> {
  for (const clientId of clientIds) {
    const sub = await connected(url, { clientId, clean: false });
    await sub.subscribeAsync(filter, { qos: 1 });
    await sub.endAsync();
  }
  const pub = await connected(url, { clientId: `${clientIds[0]}-pub` });
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const send = (): void => {
      const m = telemetry(next++);
      pub.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        if (err) return reject(err);
        if (++acked === count) resolve();
        else if (next < count) send();
      });
    };
    for (let i = 0; i < Math.min(WINDOW, count); i++) send();
  });
  await pub.endAsync();
}

async function ingestWithSource(broker: MqttBrokerConfig, count: number): Promise<{ rate: number; cpuUsPerItem: number }> {
  const cfg: MqttSourceConfig = {
    name: 'bench', broker: 'bench', format: 'json', topics: ['bench/+/+/telemetry'], qos: 1,
    values: VALUE_POINTERS.map((pointer) => ({ tag: `{2}.{3}${pointer.replace(/\//g, '.')}`, pointer, type: 'number' as const })),
    timestamp: { pointer: '/ts', format: 'epoch_ms' }, tagPrefix: '', maxPayloadBytes: 262144,
    clock: { timestamps: 'source', maxSkewMs: 86_400_000, stepThresholdMs: 300_000 },
    sparkplug: { requestRebirth: false, reorderTimeoutMs: 2000, rebirthMinIntervalMs: 10000 },
  };
  const ctx = context();
  const expected = count * VALUE_POINTERS.length;
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  ctx.bus.subscribe((batch) => {
    received += batch.length;
    if (received >= expected) done();
  });
  const source = new MqttSource(cfg, broker, ctx);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await source.start(new AbortController().signal);
  await finished;
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  await source.stop();
  return { rate: (expected / ms) * 1000, cpuUsPerItem: (used.user + used.system) / expected };
}

/** The baseline: parse, read the same four values, build the same tag names; no validation, metrics or bus. */
async function ingestBare(url: string, clientId: string, count: number): Promise<{ rate: number; cpuUsPerItem: number }> {
  const expected = count * VALUE_POINTERS.length;
  let received = 0;
  const sink: Array<{ tag: string; value: number; ts: number }> = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const client = mqtt.connect(url, { clientId, clean: false, reconnectPeriod: 0 });
  await new Promise<void>((resolve) => {
    client.on('message', (topic, payload) => {
      const levels = topic.split('/');
      const doc = JSON.parse(payload.toString()) as { ts: number; vib: { rms: number; peak: number }; temp: number; speed: number };
      const base = `${levels[1]}.${levels[2]}`;
      sink.push({ tag: `${base}.vib.rms`, value: doc.vib.rms, ts: doc.ts }, { tag: `${base}.vib.peak`, value: doc.vib.peak, ts: doc.ts });
      sink.push({ tag: `${base}.temp`, value: doc.temp, ts: doc.ts }, { tag: `${base}.speed`, value: doc.speed, ts: doc.ts });
      received += 4;
      if (sink.length > 10_000) sink.length = 0;
      if (received >= expected) resolve();
    });
  });
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu0);
  await client.endAsync();
  return { rate: (expected / ms) * 1000, cpuUsPerItem: (used.user + used.system) / expected };
}

// ── set-up ───────────────────────────────────────────────────────────────────────────────────────────────────

function context(): ComponentContext {
  return { log: pino({ level: 'silent' }), metrics: new Registry(), bus: new TagBus(), gatewayId: GATEWAY, stateDir: tmpdir() };
}

function brokerConfig(url: string, clientId: string): MqttBrokerConfig {
  return {
    name: 'bench', url, clientId, protocolVersion: 4, cleanSession: false, sessionExpiryS: 3600, keepaliveS: 30,
    connectTimeoutMs: 10_000, reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
  };
}

function sinkConfig(): MqttAlertSinkConfig {
  return { broker: 'bench', topic: 'lineguard/{gateway}/alerts/{model}', statusTopic: 'lineguard/{gateway}/status', maxInFlight: WINDOW };
}

async function connected(url: string, options: mqtt.IClientOptions): Promise<MqttClient> {
  return mqtt.connectAsync(url, { reconnectPeriod: 0, ...options });
}

/** A private Mosquitto with unlimited queues (its default of 1000 queued messages drops QoS 1 messages). */
async function startBroker(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await new Promise<number>((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [
    `user ${userInfo().username}`, 'persistence false', 'max_queued_messages 0', 'max_queued_bytes 0',
    `max_inflight_messages ${WINDOW}`, 'log_dest none', `listener ${port} 127.0.0.1`, 'allow_anonymous true', '',
  ].join('\n'));
  const bin = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
  const child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = netConnect({ port, host: '127.0.0.1' });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 200 || child.exitCode !== null) throw new Error(`mosquitto (${bin}) did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
