/**
 * Window assembly benchmark (issue 11): one aligned window of 30 frames × 14 tags on a grid of source time, with
 * tags that report by exception at different rates (some every frame, some every 10th, some once), assembled
 * - from the runtime's memory of recent samples (the live path: no query), and
 * - from the SQLite buffer (the offline path and the path just after a start),
 * each beside the raw SQL that reads the same samples from the same file (the held sample before the window and
 * the range in it, per tag) with no assembly. Same run, same data.
 *
 * Env: BENCH_WINDOW_RUNS (default 2000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { BufferConfigSchema, type BufferConfig } from '../src/buffer/config.js';
import { openDatabase } from '../src/buffer/database.js';
import { SampleBuffer } from '../src/buffer/sample-buffer.js';
import { TagBus } from '../src/core/tag-bus.js';
import type { TagSample } from '../src/core/tag-sample.js';
import { RecentSamples } from '../src/runtime/recent-samples.js';
import { assembleWindow, type AssemblyPlan } from '../src/runtime/window-assembly.js';
import { result, type BenchResult, type Progress } from './result.js';

const TAGS = Array.from({ length: 14 }, (_, i) => `engine.s${i}`);
const FRAMES = 30;
const PERIOD = 1000;
const HISTORY_FRAMES = 20_000;

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

function p50(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

export async function run(progress: Progress): Promise<BenchResult[]> {
  const runs = envInt('BENCH_WINDOW_RUNS', 2000);
  const dir = mkdtempSync(join(tmpdir(), 'lineguard-bench-windows-'));
  try {
    // Report by exception: tag i changes every (1 + i) frames.
    const samples: TagSample[] = [];
    for (let k = 0; k < HISTORY_FRAMES; k++) {
      TAGS.forEach((tag, i) => {
        if (k % (1 + i) === 0) samples.push({ tag, ts: k * PERIOD, value: Math.sin(k / 40 + i), quality: 'good', source: 'bench' });
      });
    }
    progress(`runtime.window_assembly: ${samples.length} samples of ${TAGS.length} tags`);
    const bus = new TagBus();
    const cfg = Value.Default(BufferConfigSchema, { flushIntervalMs: 60_000, memoryMaxSamples: 1_000_000, flushMaxRows: 1_000_000 }) as BufferConfig;
    const buffer = new SampleBuffer(cfg, { log: pino({ level: 'warn' }), metrics: new Registry(), bus, gatewayId: 'bench', stateDir: dir });
    await buffer.start(new AbortController().signal);
    const memory = new RecentSamples(TAGS);
    for (let i = 0; i < samples.length; i += 10_000) {
      const batch = samples.slice(i, i + 10_000);
      bus.publish(batch);
      memory.add(batch);
    }
    buffer.flush();
    const plan: AssemblyPlan = { tags: TAGS, samples: FRAMES, periodMs: PERIOD, maxHoldMs: TAGS.map(() => 3_600_000) };
    const ends: number[] = [];
    for (let r = 0; r < runs; r++) ends.push((FRAMES + ((r * 7919) % (HISTORY_FRAMES - FRAMES - 1))) * PERIOD);
    memory.prune(Math.min(...ends) - FRAMES * PERIOD);

    const time = (f: (end: number) => unknown): number[] => {
      const out: number[] = [];
      for (let r = 0; r < runs + 50; r++) {
        const end = ends[r % runs]!;
        const t0 = performance.now();
        f(end);
        if (r >= 50) out.push(performance.now() - t0);
      }
      return out;
    };
    const check = assembleWindow(memory, plan, ends[0]!);
    if (check.rows !== FRAMES || check.valid.some((v) => v !== 1)) throw new Error('the benchmark window is not full');
    progress('runtime.window_assembly: memory, buffer, raw SQL');
    const fromMemory = time((end) => assembleWindow(memory, plan, end));
    const fromBuffer = time((end) => assembleWindow(buffer, plan, end));
    await buffer.stop();

    const db = openDatabase(join(dir, 'lineguard.db'), { synchronous: 'NORMAL' });
    const ids = TAGS.map((t) => (db.prepare('SELECT id FROM tags WHERE name = ?').get(t) as { id: number }).id);
    const held = db.prepare('SELECT ts, value, quality, kind FROM samples WHERE tag_id = ? AND ts <= ? ORDER BY ts DESC LIMIT 1').raw(true);
    const range = db.prepare('SELECT ts, value, quality, kind FROM samples WHERE tag_id = ? AND ts > ? AND ts <= ? ORDER BY ts').raw(true);
    const raw = time((end) => {
      const from = end - (FRAMES - 1) * PERIOD;
      for (const id of ids) {
        held.get(id, from);
        range.all(id, from, end);
      }
    });
    db.close();
    const round = (n: number): number => Number(n.toFixed(4));
    return [
      result('runtime.window_assembly', round(p50(fromMemory)), 'ms', 'lower', round(p50(raw)), 'raw SQL reading the same samples (no assembly)', {
        window: `${FRAMES} frames x ${TAGS.length} tags, report by exception`,
        fromBufferP50Ms: round(p50(fromBuffer)),
        fromBufferVsRaw: Number((p50(fromBuffer) / p50(raw)).toFixed(2)),
        runs,
      }),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
