import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SampleBuffer, type SampleBufferTuning } from '../../../src/buffer/sample-buffer.js';
import type { BufferConfig } from '../../../src/buffer/config.js';
import type { TagSample } from '../../../src/core/tag-sample.js';
import { bufferConfig, bufferContext, sample } from './buffer-context.js';

const signal = new AbortController().signal;
const NOW = 1_700_000_000_000;
let ctx: ReturnType<typeof bufferContext>;
const buffers: SampleBuffer[] = [];

async function startBuffer(cfg: Partial<BufferConfig>, tuning: Partial<SampleBufferTuning> = {}): Promise<SampleBuffer> {
  const b = new SampleBuffer(bufferConfig({ flushIntervalMs: 60_000, ...cfg }), ctx, { now: () => NOW, agePassIntervalMs: 0, ...tuning });
  buffers.push(b);
  await b.start(signal);
  return b;
}

/** Runs retention steps until it reports no more work. */
function maintainUntilIdle(b: SampleBuffer): number {
  let steps = 0;
  while (b.maintain()) {
    if (++steps > 10_000) throw new Error('retention never finished');
  }
  return steps;
}

function inspect(file: string): { rows: number; minTs: number; maxTs: number; pages: number; free: number; pageSize: number } {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const r = db.prepare('SELECT count(*) AS rows, min(ts) AS minTs, max(ts) AS maxTs FROM samples').get() as { rows: number; minTs: number; maxTs: number };
    return {
      ...r,
      pages: db.pragma('page_count', { simple: true }) as number,
      free: db.pragma('freelist_count', { simple: true }) as number,
      pageSize: db.pragma('page_size', { simple: true }) as number,
    };
  } finally {
    db.close();
  }
}

function samplesFor(tags: number, fromTs: number, count: number, stepMs: number): TagSample[] {
  const out: TagSample[] = [];
  for (let k = 0; k < count; k++) for (let t = 0; t < tags; t++) out.push(sample(`tag${t}`, fromTs + k * stepMs, Math.sin(k) * 100 + t));
  return out;
}

beforeEach(() => {
  ctx = bufferContext();
});

afterEach(async () => {
  for (const b of buffers.splice(0)) await b.stop();
  ctx.cleanup();
});

describe('retention', () => {
  it('deletes samples older than maxAge, in small steps, keeping the rest', async () => {
    // A zero time budget: each step runs one delete statement of at most 2,000 rows.
    const b = await startBuffer({ retention: { maxAge: '1h', maxSize: '2GB' } }, { pruneBudgetMs: 0 });
    // 3 tags × 3 h at 1 s: 32,400 rows, 21,597 of them older than an hour.
    ctx.bus.publish(samplesFor(3, NOW - 3 * 3600_000, 3 * 3600 + 1, 1000));
    b.flush();
    const steps = maintainUntilIdle(b);
    expect(steps).toBeGreaterThanOrEqual(Math.ceil(21_597 / 2_000));
    const after = inspect(b.file);
    expect(after.minTs).toBe(NOW - 3600_000);
    expect(after.maxTs).toBe(NOW);
    expect(after.rows).toBe(3 * 3601);
    expect(await ctx.metrics.getSingleMetricAsString('lineguard_buffer_pruned_rows_total')).toContain(
      `lineguard_buffer_pruned_rows_total{reason="age"} ${3 * (3 * 3600 + 1) - 3 * 3601}`,
    );
  });

  it('keeps the database below maxSize by deleting the oldest samples, and the file stops growing', async () => {
    const maxSize = 2_000_000;
    const b = await startBuffer({ retention: { maxAge: '3650d', maxSize: '2MB' } });
    const sizes: number[] = [];
    let ts = NOW - 1e9;
    // What arrives between two retention steps adds to the file: here 8,000 rows (~11 % of the bound) per step.
    for (let round = 0; round < 50; round++) {
      ctx.bus.publish(samplesFor(8, ts, 1_000, 100));
      ts += 1_000 * 100;
      b.flush();
      maintainUntilIdle(b);
      const s = inspect(b.file);
      sizes.push(s.pages * s.pageSize);
      expect((s.pages - s.free) * s.pageSize).toBeLessThanOrEqual(maxSize * 0.95);
    }
    // 400,000 rows (~11 MB) went through a 2 MB database: the file stays within its bound.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(maxSize * 1.1);
    // and it reached its steady state: the second half of the run did not grow it.
    expect(Math.max(...sizes.slice(25))).toBeLessThanOrEqual(Math.max(...sizes.slice(0, 25)));
    const last = inspect(b.file);
    expect(last.maxTs).toBe(ts - 100);
    expect(last.minTs).toBeGreaterThan(NOW - 1e9);
    // Oldest first: what is left is one contiguous stretch of the newest history, for every tag.
    const w = b.lastN(['tag0', 'tag7'], 100);
    expect(w.valid.every((v) => v === 1)).toBe(true);
    expect(await ctx.metrics.getSingleMetricAsString('lineguard_buffer_pruned_rows_total')).toMatch(/reason="size"} [1-9]/);
  });

  it('gives free pages back to the file system when the file is over its bound', async () => {
    const big = await startBuffer({ retention: { maxAge: '3650d', maxSize: '2GB' } });
    ctx.bus.publish(samplesFor(4, NOW - 1e8, 50_000, 100));
    big.flush();
    await big.stop();
    const before = inspect(big.file);
    expect(before.pages * before.pageSize).toBeGreaterThan(4_000_000);

    const small = await startBuffer({ retention: { maxAge: '3650d', maxSize: '2MB' } });
    maintainUntilIdle(small);
    const after = inspect(small.file);
    expect(after.pages * after.pageSize).toBeLessThanOrEqual(2_000_000);
    expect(after.rows).toBeGreaterThan(0);
    expect(after.maxTs).toBe(before.maxTs);
  });

  it('a source whose clock is behind by more than maxAge keeps the samples it just sent (age is measured against its newest)', async () => {
    const b = await startBuffer({ retention: { maxAge: '1h', maxSize: '2GB' } });
    const behind = Date.UTC(2000, 0, 1); // a PLC whose clock battery died
    // 3 h at 1 s each: the gateway's tag and the PLC's tag.
    for (let k = 0; k <= 3 * 3600; k++) {
      ctx.bus.publish([sample('gateway-clock', NOW - 3 * 3600_000 + k * 1000, k), sample('plc-clock', behind + k * 1000, k)]);
    }
    b.flush();
    maintainUntilIdle(b);
    const plc = b.lastN(['plc-clock'], 3601);
    expect(plc.valid.every((v) => v === 1)).toBe(true);
    expect(plc.ts[3600]).toBe(behind + 3 * 3600_000);
    expect(plc.ts[0]).toBe(behind + 2 * 3600_000);
    expect(b.lastN(['plc-clock'], 3602).valid[0]).toBe(0);
    const gateway = b.lastN(['gateway-clock'], 3602);
    expect(gateway.ts[1]).toBe(NOW - 3600_000);
    expect(gateway.valid[0]).toBe(0);
  });

  it('holds maxSize by the same share of every tag, whatever its clock: a source far ahead or behind costs no other tag its history', async () => {
    const maxSize = 2_000_000;
    const b = await startBuffer({ retention: { maxAge: '3650d', maxSize: '2MB' } });
    const year = 365 * 86_400_000;
    // tag0..tag5 on the gateway's clock, `ahead` 4 years in the future, `behind` 24 years in the past (older than maxAge).
    const offsets: Record<string, number> = { ahead: 4 * year, behind: -24 * year };
    for (let t = 0; t < 6; t++) offsets[`tag${t}`] = 0;
    let ts = NOW - 1e9;
    for (let round = 0; round < 40; round++) {
      const batch: TagSample[] = [];
      for (let k = 0; k < 1_000; k++) for (const [tag, offset] of Object.entries(offsets)) batch.push(sample(tag, ts + offset + k * 100, k));
      ts += 1_000 * 100;
      ctx.bus.publish(batch);
      b.flush();
      maintainUntilIdle(b);
      const s = inspect(b.file);
      expect((s.pages - s.free) * s.pageSize).toBeLessThanOrEqual(maxSize * 0.95);
    }
    const db = new BetterSqlite3(b.file, { readonly: true });
    const rows = Object.fromEntries(
      db.prepare('SELECT t.name, count(*) FROM samples s JOIN tags t ON t.id = s.tag_id GROUP BY t.name').raw().all() as Array<[string, number]>,
    );
    db.close();
    // Each of the 8 tags keeps about an eighth of what fits (some 7,000 rows): far more than the last round's 1,000.
    for (const tag of Object.keys(offsets)) expect(rows[tag]).toBeGreaterThan(4_000);
    // and each keeps its newest stretch, contiguous.
    for (const tag of Object.keys(offsets)) {
      const w = b.lastN([tag], 4_000);
      expect(w.valid.every((v) => v === 1)).toBe(true);
      expect(w.ts[3_999]).toBe(ts - 100 + offsets[tag]!);
    }
  });

  it('retention runs from its own timer', async () => {
    const b = await startBuffer({ retention: { maxAge: '1h', maxSize: '2GB' } }, { maintenanceIntervalMs: 20 });
    ctx.bus.publish([sample('old', NOW - 2 * 3600_000, 1), sample('old', NOW, 2)]);
    b.flush();
    const end = Date.now() + 5000;
    while (inspect(b.file).rows !== 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(inspect(b.file).rows).toBe(1);
  });
});
