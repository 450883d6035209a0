/**
 * Idle cost per tag (issue 13): the CPU an idle gateway spends once it knows many tags — per-tag timers, gauges and
 * bookkeeping must not grow the idle load. An in-process daemon with one MQTT source (topic-templated tag names)
 * and the SQLite buffer: idle CPU over a few seconds before any tag exists (the baseline, same process, same run),
 * then after 20,000 distinct tags arrived once.
 *
 * Needs an MQTT broker: MQTT_URL, else mqtt://127.0.0.1:1883. Env: BENCH_IDLE_TAGS (default 20000),
 * BENCH_IDLE_SECONDS (default 5).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { loadConfigFile } from '../src/daemon/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { createLogger, SecretRedactor } from '../src/daemon/logger.js';
import { result, type BenchResult, type Progress } from './result.js';

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

/** CPU share of one core used by this process over `seconds` of wall time, in %. */
async function idleCpu(seconds: number): Promise<number> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = process.cpuUsage(cpu0);
  return ((used.user + used.system) / 1000 / (performance.now() - t0)) * 100;
}

export async function run(progress: Progress): Promise<BenchResult[]> {
  const tags = envInt('BENCH_IDLE_TAGS', 20_000);
  const seconds = envInt('BENCH_IDLE_SECONDS', 5);
  const url = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
  const dir = mkdtempSync(join(tmpdir(), 'lineguard-bench-idle-'));
  const topic = `lineguard-bench-idle-${process.pid}`;
  const file = join(dir, 'lineguard.yaml');
  writeFileSync(file, `gateway: { id: bench-idle, stateDir: ${JSON.stringify(join(dir, 'state'))} }
log: { level: warn }
http: { enabled: false }
mqtt:
  brokers: [{ name: local, url: ${url} }]
  sources:
    - name: devices
      broker: local
      topics: [${topic}/+]
      values: [{ tag: "dev.{2}.v", pointer: /v }]
`);
  const loaded = loadConfigFile(file);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const redactor = new SecretRedactor();
  const daemon = new Daemon(file, loaded, createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }, redactor), redactor);
  try {
    await daemon.start();
    progress(`bench.idle: baseline, ${seconds} s idle with no tag`);
    const before = await idleCpu(seconds);
    progress(`bench.idle: ${tags} distinct tags, one message each`);
    const pub = await mqtt.connectAsync(url);
    for (let i = 0; i < tags; i++) pub.publish(`${topic}/d${i}`, JSON.stringify({ v: i }), { qos: 0 });
    await pub.endAsync();
    const deadline = Date.now() + 60_000;
    const count = (): number => Number((daemon.component('mqtt-source/devices')?.health().details as { samples?: number } | undefined)?.samples ?? 0);
    while (count() < tags && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const received = count();
    await new Promise((r) => setTimeout(r, 2000)); // the buffer's commit and first maintenance pass
    progress(`bench.idle: ${seconds} s idle with ${received} tags`);
    const after = await idleCpu(seconds);
    return [
      result('daemon.idle_cpu_20k_tags', Number(after.toFixed(2)), '% of a core', 'lower', Number(before.toFixed(2)), 'the same daemon idle before any tag (same run)', {
        tagsReceived: received,
        idleSeconds: seconds,
        perTagMicroPercent: Number((((after - before) / Math.max(1, received)) * 1e6).toFixed(1)),
      }),
    ];
  } finally {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
