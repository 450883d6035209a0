import Sqlite from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readInferences } from '../../../src/buffer/inference-log.js';
import type { InferenceRow } from '../../../src/core/inference-record.js';
import { main } from '../../../src/daemon/cli.js';
import { runBacktest, type BacktestRow } from '../../../src/runtime/backtest.js';
import type { ModelConfig } from '../../../src/runtime/config.js';
import { fixture, modelConfig, until } from '../../unit/runtime/runtime-context.js';
import { RuntimeHarness } from './runtime-harness.js';

/**
 * The backtest equals live inference: a ModelRunner over a real SampleBuffer records every window in the buffer's
 * inference_log while samples arrive on source time; the backtest over the same period, read from the same SQLite
 * file, gives the same windows with the same outputs (≤ 1e-6) and the same skipped windows.
 */
const TAGS = ['press1.a', 'press1.b'];
let h: RuntimeHarness;

beforeEach(async () => {
  h = await new RuntimeHarness().start();
});

afterEach(async () => {
  await h.stop();
});

/** A value that wanders: a (failure_probability after z-scoring with mean 0, std 1) crosses 0.8 and 0.5 a few times. */
function a(i: number): number {
  return Math.round((0.5 + 0.45 * Math.sin(i / 3)) * 1000) / 1000;
}

/** Runs the model live over `rows` ([ts, tag index or -1 for every tag, value]) and returns what it recorded. */
async function live(cfg: ModelConfig, rows: Array<[number, number[]]>): Promise<InferenceRow[]> {
  const runner = await h.runner(cfg, { recorder: h.buffer.inferences });
  const lastEnd = (): number => {
    const iso = (runner.health().details!.window as { lastEnd: string | null }).lastEnd;
    return iso === null ? Number.NEGATIVE_INFINITY : Date.parse(iso);
  };
  for (const [ts, values] of rows) {
    h.publish(ts, TAGS, values);
    // One row at a time, so every window is evaluated when it becomes ready (live skips a backlog to the newest).
    await until(() => lastEnd() >= (cfg.window.periodMs ? Math.floor(ts / cfg.window.periodMs) * cfg.window.periodMs : ts), 5000, `window at ${ts}`);
  }
  await runner.stop();
  const last = rows.at(-1)![0];
  await until(() => h.buffer.inferences.pending === 0 && h.buffer.recent(TAGS[1]!, 1, Number.POSITIVE_INFINITY)[0]?.ts === last, 5000, 'record and samples committed');
  const db = new Sqlite(h.buffer.file, { readonly: true });
  try {
    return readInferences(db, { model: cfg.name });
  } finally {
    db.close();
  }
}

function expectSameRows(recorded: InferenceRow[], replayed: BacktestRow[]): void {
  expect(replayed.map((r) => r.ts)).toEqual(recorded.map((r) => r.ts));
  let maxDiff = 0;
  recorded.forEach((row, i) => {
    const b = replayed[i]!;
    expect(b.skipped, `window ${row.ts}`).toBe(row.skipped);
    if (row.skipped) return;
    expect(Object.keys(b.outputs!).sort()).toEqual(Object.keys(row.outputs!).sort());
    for (const [name, value] of Object.entries(row.outputs!)) {
      const other = b.outputs![name]!;
      const xs = Array.isArray(value) ? value : [value];
      const ys = Array.isArray(other) ? other : [other];
      expect(ys.length).toBe(xs.length);
      xs.forEach((x, k) => (maxDiff = Math.max(maxDiff, Math.abs(x - ys[k]!))));
    }
  });
  expect(maxDiff).toBeLessThanOrEqual(1e-6);
}

describe('backtest = live inference', () => {
  it('grid model (window.periodMs): the same windows and outputs as the inference_log of a live run', async () => {
    const cfg = modelConfig({ window: { samples: 4, periodMs: 1000, latenessMs: 2000 }, schedule: { everyMs: 20 } });
    // Rows every 700 ms, off the grid, on source time a few minutes back (within the clock's step threshold).
    const base = Math.floor((Date.now() - 120_000) / 1000) * 1000 + 350;
    const rows: Array<[number, number[]]> = [];
    for (let i = 0; i < 60; i++) rows.push([base + i * 700, [a(i), 10 + (i % 7)]]);
    const recorded = await live(cfg, rows);
    expect(recorded.filter((r) => !r.skipped).length).toBeGreaterThan(30);
    expect(recorded.some((r) => r.skipped === 'too_many_invalid')).toBe(true); // the first windows are not full
    const result = await runBacktest({ cfg, file: fixture('last-value.onnx'), reader: h.buffer, fromMs: recorded[0]!.ts, toMs: recorded.at(-1)!.ts });
    expectSameRows(recorded, result.rows);
    // The rule saw the same values: the live outbox holds the same raises and clears as the backtest found.
    const events = h.alerts().filter((e) => e.kind !== 'model_unavailable').map((e) => [e.state, e.ts, e.output.value]);
    const replayed = result.alerts.flatMap((x) => [
      ['raised', x.raisedAt, x.raiseValue], ...(x.clearedAt !== undefined ? [['cleared', x.clearedAt, x.clearValue]] : []),
    ]);
    expect(replayed).toEqual(events);
    expect(result.alerts.length).toBeGreaterThan(0);
  });

  it('event model (no periodMs): one window per distinct sample time, through `lineguard backtest --json`', async () => {
    const cfg = modelConfig({ window: { samples: 4 }, schedule: { everyMs: 20 } });
    const base = Date.now() - 120_000;
    const rows: Array<[number, number[]]> = [];
    for (let i = 0; i < 40; i++) rows.push([base + i * 1000 + (i % 3) * 137, [a(i), 9 + (i % 5)]]);
    const recorded = await live(cfg, rows);
    expect(recorded.filter((r) => !r.skipped).length).toBeGreaterThan(30);

    const configFile = join(h.ctx.stateDir, 'lineguard.yaml');
    writeFileSync(configFile, [
      `gateway: { id: gw-test, stateDir: ${JSON.stringify(h.ctx.stateDir)} }`,
      'models:',
      '  - name: press1',
      `    file: ${JSON.stringify(fixture('last-value.onnx'))}`,
      `    inputs: [${TAGS.join(', ')}]`,
      '    window: { samples: 4 }',
      '    alert: { raiseAbove: 0.8, clearBelow: 0.5 }',
    ].join('\n'));
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      ['backtest', '--config', configFile, '--model', 'press1', '--from', String(recorded[0]!.ts), '--to', String(recorded.at(-1)!.ts), '--outputs', '--json'],
      { out: (l) => out.push(l), err: (l) => err.push(l), log: pino({ level: 'silent' }) },
    );
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const doc = JSON.parse(out.join('\n')) as { outputs: BacktestRow[]; rules: Array<{ raises: number }> };
    expectSameRows(recorded, doc.outputs);
    expect(doc.rules[0]!.raises).toBeGreaterThan(0);
  });
});
