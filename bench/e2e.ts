/**
 * End-to-end benchmarks of the whole gateway.
 *
 * e2e.sample_to_alert_p50/p99: a sample arrives at the gateway (an MQTT JSON message carrying the six AI4I tags,
 * alternating a real failure row and a real normal row, so each message raises or clears an alert) → the alert is
 * PUBACKed by the broker. The Daemon runs in this process with the buffer, the fault model (on new data), the
 * outbox and the sink; arrival is stamped by the first listener on the tag bus; PUBACK is observed as the outbox
 * entry's removal (the sink acks only on PUBACK). Baseline, same run, same broker, same model: a bare pipeline —
 * mqtt.js subscriber → JSON.parse → session.run on the event loop → QoS 1 publish → PUBACK — with no durability,
 * no worker thread and no rule state.
 *
 * daemon.rss_10k_tags: RSS of `lineguard run` (a child process) reading 10,000 OPC UA tags at 100 ms from a
 * node-opcua server in another process, with 2 models, after a settling period; beside the RSS of a bare Node.js
 * process that only loaded node-opcua and onnxruntime-node (the floor any gateway on this stack pays).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import { loadConfigFile } from '../src/daemon/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { SecretRedactor } from '../src/daemon/logger.js';
import { SampleBuffer } from '../src/buffer/index.js';
import { loadAi4i, type Ai4iRow } from '../src/demo/datasets.js';
import { EmbeddedBroker } from '../src/demo/embedded-broker.js';
import { readModelFile } from '../src/runtime/model-file.js';
import { spawnOpcuaTestServer } from '../test/support/opcua-server.js';
import { result, type BenchResult, type Progress } from './result.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fileURLToPath(import.meta.url).includes('/dist/') ? '../..' : '..');
const FAULT_MODEL = path.join(ROOT, 'models/ai4i-fault/model.onnx');
const RUL_MODEL = path.join(ROOT, 'models/cmapss-rul/model.onnx');
const ALERTS = Number(process.env.BENCH_E2E_ALERTS ?? 400);
const TAGS = ['air', 'process', 'speed', 'torque', 'wear', 'type'];

export async function run(progress: Progress): Promise<BenchResult[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-bench-e2e-'));
  let embedded: EmbeddedBroker | undefined;
  try {
    let url = process.env.MQTT_URL;
    if (!url && (await listening(1883))) url = 'mqtt://127.0.0.1:1883';
    if (!url) {
      embedded = new EmbeddedBroker();
      url = await embedded.start();
      progress(`no broker found: using the embedded aedes broker at ${url}`);
    }
    const pair = await pickRows();
    progress(`sample → alert: ${ALERTS} alerts through the gateway, then the bare pipeline (broker ${url})`);
    const gateway = await gatewayLatency(dir, url, pair, progress);
    const bare = await bareLatency(url, pair);
    progress(`gateway p50 ${gateway.p50.toFixed(2)} ms p99 ${gateway.p99.toFixed(2)} ms; bare p50 ${bare.p50.toFixed(2)} ms p99 ${bare.p99.toFixed(2)} ms`);
    progress('RSS with 10,000 OPC UA tags and 2 models (about 40 s)');
    const rss = await daemonRss(dir, progress);
    return [
      result('e2e.sample_to_alert_p50', gateway.p50, 'ms', 'lower', bare.p50, 'bare mqtt.js → session.run → QoS 1 publish, same broker and model', { alerts: ALERTS }),
      result('e2e.sample_to_alert_p99', gateway.p99, 'ms', 'lower', bare.p99, 'bare mqtt.js → session.run → QoS 1 publish, same broker and model', { alerts: ALERTS }),
      result('daemon.rss_10k_tags', rss.daemonMb, 'MB', 'lower', rss.floorMb, 'bare node process with node-opcua + onnxruntime-node loaded', {
        tags: 10_000, models: 2, samples_per_s: Math.round(rss.samplesPerS),
      }),
    ];
  } finally {
    await embedded?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RowPair { fault: number[]; normal: number[] }

async function pickRows(): Promise<RowPair> {
  const rows = loadAi4i(path.join(ROOT, 'models/data/ai4i2020/ai4i2020.csv'));
  const raw = (r: Ai4iRow): number[] => [r.airTemperatureK, r.processTemperatureK, r.rotationalSpeedRpm, r.torqueNm, r.toolWearMin, { L: 0, M: 1, H: 2 }[r.type]];
  const fault = rows.find((r) => r.machineFailure && r.modes.PWF)!;
  const normal = rows.find((r) => !r.machineFailure && r.toolWearMin < 50)!;
  return { fault: raw(fault), normal: raw(normal) };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function gatewayLatency(dir: string, url: string, pair: RowPair, progress: Progress): Promise<{ p50: number; p99: number }> {
  const topic = `lineguard-bench/${process.pid}/press`;
  const meta = (await readModelFile(FAULT_MODEL)).metadata!;
  const rule = meta.recommendedAlert as { raiseAbove: number; clearBelow: number };
  const configFile = path.join(dir, 'e2e.yaml');
  writeFileSync(configFile, `gateway: { id: bench-e2e, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }
http: { enabled: false }
mqtt:
  brokers: [{ name: b, url: "${url}", cleanSession: true }]
  sources:
    - name: press
      broker: b
      topics: ["${topic}"]
      values: [${TAGS.map((t) => `{ tag: "press.${t}", pointer: "/${t}" }`).join(', ')}]
      timestamp: { pointer: /ts, format: epoch_ms }
  alerts: { broker: b, topic: "lineguard-bench/${process.pid}/alerts/{model}" }
buffer: { flushIntervalMs: 50 }
models:
  - name: fault
    file: ${JSON.stringify(FAULT_MODEL)}
    inputs: [${TAGS.map((t) => `press.${t}`).join(', ')}]
    schedule: { everyMs: 60000, onNewData: true }
    alert: { raiseAbove: ${rule.raiseAbove}, clearBelow: ${rule.clearBelow} }
`);
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const daemon = new Daemon(configFile, loaded, pino({ level: 'warn' }), new SecretRedactor());
  await daemon.start();
  const arrivals = new Map<number, number>();
  daemon.bus.subscribe((samples) => {
    const now = performance.now();
    for (const s of samples) if (!arrivals.has(s.ts)) arrivals.set(s.ts, now);
  });
  const buffer = daemon.component('buffer') as SampleBuffer;
  const latencies: number[] = [];
  const outbox = buffer.outbox;
  let enqueuedCount = 0;
  const unsubscribe = outbox.onEnqueue(() => {
    enqueuedCount++;
  });
  const publisher = await mqtt.connectAsync(url, { clientId: `lineguard-bench-pub-${process.pid}` });
  try {
    let ts = Date.now();
    for (let i = 0; i < ALERTS; i++) {
      const values = i % 2 === 0 ? pair.fault : pair.normal;
      ts += 1;
      const target = enqueuedCount + 1;
      await publisher.publishAsync(topic, JSON.stringify({ ts, ...Object.fromEntries(TAGS.map((t, k) => [t, values[k]])) }), { qos: 0 });
      await waitUntil(() => enqueuedCount >= target, 5000);
      // The sink acks (removes) an entry only on the broker's PUBACK.
      await waitUntil(() => outbox.depth() === 0, 5000);
      const arrived = arrivals.get(ts);
      if (arrived !== undefined) latencies.push(performance.now() - arrived);
      if (i > 0 && i % 100 === 0) progress(`gateway: ${i} alerts`);
    }
  } finally {
    unsubscribe();
    await publisher.endAsync();
    await daemon.stop();
  }
  if (latencies.length < ALERTS * 0.9) throw new Error(`only ${latencies.length} of ${ALERTS} samples produced an alert`);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function bareLatency(url: string, pair: RowPair): Promise<{ p50: number; p99: number }> {
  const meta = (await readModelFile(FAULT_MODEL)).metadata!;
  const session = await ort.InferenceSession.create(FAULT_MODEL, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const inTopic = `lineguard-bench/${process.pid}/bare-in`;
  const outTopic = `lineguard-bench/${process.pid}/bare-out`;
  const gateway = await mqtt.connectAsync(url, { clientId: `lineguard-bench-bare-gw-${process.pid}` });
  const publisher = await mqtt.connectAsync(url, { clientId: `lineguard-bench-bare-pub-${process.pid}` });
  const latencies: number[] = [];
  let done: (() => void) | undefined;
  gateway.on('message', (_t, payload) => {
    const arrived = performance.now();
    const msg = JSON.parse(payload.toString()) as Record<string, number>;
    const x = Float32Array.from(TAGS.map((t, k) => (msg[t]! - meta.inputs[k]!.mean) / meta.inputs[k]!.std));
    void session.run({ input: new ort.Tensor('float32', x, [1, 1, 6]) }).then((out) => {
      const p = (out.failure_probability!.data as Float32Array)[0]!;
      return gateway.publishAsync(outTopic, JSON.stringify({ ts: msg.ts, p }), { qos: 1 });
    }).then(() => {
      latencies.push(performance.now() - arrived);
      done?.();
    });
  });
  await gateway.subscribeAsync(inTopic, { qos: 0 });
  try {
    for (let i = 0; i < ALERTS; i++) {
      const values = i % 2 === 0 ? pair.fault : pair.normal;
      const acked = new Promise<void>((resolve) => { done = resolve; });
      await publisher.publishAsync(inTopic, JSON.stringify({ ts: i, ...Object.fromEntries(TAGS.map((t, k) => [t, values[k]])) }), { qos: 0 });
      await acked;
    }
  } finally {
    await publisher.endAsync();
    await gateway.endAsync();
    await session.release();
  }
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function daemonRss(dir: string, progress: Progress): Promise<{ daemonMb: number; floorMb: number; samplesPerS: number }> {
  const server = await spawnOpcuaTestServer({ securityModes: ['None'], generated: { count: 10_000, prefix: 'v' } });
  const configFile = path.join(dir, 'rss.yaml');
  const tags = Array.from({ length: 10_000 }, (_, i) => `      - { tag: t.v${i}, nodeId: "nsu=${server.namespaceUri};s=v${i}", samplingIntervalMs: 100 }`);
  const rulMeta = (await readModelFile(RUL_MODEL)).metadata!;
  writeFileSync(configFile, `gateway: { id: bench-rss, stateDir: ${JSON.stringify(path.join(dir, 'rss-state'))} }
http: { port: 0 }
opcua:
  - name: big
    endpoint: ${server.endpoint}
    security: { mode: None, policy: None }
    publishingIntervalMs: 100
    tags:
${tags.join('\n')}
models:
  - name: fault
    file: ${JSON.stringify(FAULT_MODEL)}
    inputs: [t.v0, t.v1, t.v2, t.v3, t.v4, t.v5]
    alert: { raiseAbove: 2, clearBelow: 1 }
  - name: rul
    file: ${JSON.stringify(RUL_MODEL)}
    inputs: [${rulMeta.inputs.map((_, i) => `t.v${100 + i}`).join(', ')}]
    window: { samples: ${rulMeta.window ?? 1} }
    alert: { raiseBelow: -1, clearAbove: 0 }
`);
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/lineguard'), 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let httpUrl = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('lineguard run did not become ready in 120 s')), 120_000);
      let buffered = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        for (const line of buffered.split('\n').slice(0, -1)) {
          const m = /"url":"(http:[^"]+)"/.exec(line);
          if (m) httpUrl = m[1]!;
          if (line.includes('"lineguard ready"')) {
            clearTimeout(timer);
            resolve();
          }
        }
        buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
      });
      child.once('exit', (code) => reject(new Error(`lineguard run exited with ${code}`)));
    });
    progress('daemon ready; settling 20 s');
    const samplesAt = async (): Promise<number> => {
      const text = await (await fetch(`${httpUrl}/metrics`)).text();
      const m = /^lineguard_buffer_rows_written_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    await new Promise((r) => setTimeout(r, 15_000));
    const s0 = await samplesAt();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 5_000));
    const samplesPerS = ((await samplesAt()) - s0) / ((Date.now() - t0) / 1000);
    const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
    const rss = Number(/^lineguard_process_resident_memory_bytes(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? NaN) / 1e6;
    const floorMb = await floorRss();
    return { daemonMb: rss, floorMb, samplesPerS };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await server.stop();
  }
}

/** RSS of a Node.js process that loaded node-opcua and onnxruntime-node and did nothing else. */
async function floorRss(): Promise<number> {
  const script = "await import('node-opcua'); await import('onnxruntime-node'); global.gc?.(); await new Promise(r => setTimeout(r, 500)); process.stdout.write('RSS=' + process.memoryUsage().rss + '\\n');";
  return await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    // node-opcua prints a warning on stdout while loading: read only our line.
    child.once('exit', (code) => (code === 0 ? resolve(Number(/RSS=(\d+)/.exec(out)?.[1]) / 1e6) : reject(new Error(`floor process exited ${code}`))));
  });
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
