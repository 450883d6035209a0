import BetterSqlite3 from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESERVE_BYTES_PER_ALERT, RESERVE_WAL_BYTES } from '../../../src/buffer/disk-reserve.js';
import { SCHEMA_VERSION } from '../../../src/buffer/migrations.js';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import type { TagSample } from '../../../src/core/tag-sample.js';
import { bufferConfig, bufferContext, sample } from './buffer-context.js';
import { makeAlert } from '../../support/alert-event.js';

const signal = new AbortController().signal;
let ctx: ReturnType<typeof bufferContext>;
const buffers: SampleBuffer[] = [];

function newBuffer(...args: Parameters<typeof bufferConfig>): SampleBuffer {
  const b = new SampleBuffer(bufferConfig(...args), ctx);
  buffers.push(b);
  return b;
}

/** Waits until `check` returns true (polling), failing after `ms`. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function count(file: string, sql = 'SELECT count(*) FROM samples'): number {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    return db.prepare(sql).pluck().get() as number;
  } finally {
    db.close();
  }
}

beforeEach(() => {
  ctx = bufferContext();
});

afterEach(async () => {
  for (const b of buffers.splice(0)) await b.stop();
  ctx.cleanup();
});

describe('SampleBuffer', () => {
  it('opens <stateDir>/<file>, migrates, and reports up', async () => {
    const b = newBuffer();
    expect(b.name).toBe('buffer');
    expect(b.health().state).toBe('starting');
    await b.start(signal);
    expect(b.file).toBe(join(ctx.stateDir, 'lineguard.db'));
    expect(b.health()).toMatchObject({ state: 'up', details: { pendingSamples: 0, outboxDepth: 0 } });
    expect(count(b.file, 'PRAGMA user_version')).toBe(SCHEMA_VERSION);
    expect(count(b.file, 'PRAGMA journal_mode')).toBe('wal' as unknown as number);
    expect(count(b.file, 'PRAGMA auto_vacuum')).toBe(2);
  });

  it('keeps an absolute file path as it is', async () => {
    const other = mkdtempSync(join(tmpdir(), 'lg-abs-'));
    try {
      const b = newBuffer({ file: join(other, 'sub', 'x.db') });
      await b.start(signal);
      expect(b.file).toBe(join(other, 'sub', 'x.db'));
      await b.stop();
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('commits bus samples on the flush interval', async () => {
    const b = newBuffer({ flushIntervalMs: 20 });
    await b.start(signal);
    ctx.bus.publish([sample('a', 1, 1), sample('a', 2, 2)]);
    expect(b.health().details?.pendingSamples).toBe(2);
    await until(() => b.health().details?.pendingSamples === 0);
    expect(count(b.file)).toBe(2);
    expect(await ctx.metrics.getSingleMetricAsString('lineguard_buffer_rows_written_total')).toContain(
      'lineguard_buffer_rows_written_total 2',
    );
  });

  it('commits early when flushMaxRows samples are waiting, in chunks that yield to the event loop', async () => {
    const b = newBuffer({ flushIntervalMs: 60_000, flushMaxRows: 500 });
    await b.start(signal);
    ctx.bus.publish(Array.from({ length: 5_000 }, (_, i) => sample(`t${i % 7}`, i, i)));
    await until(() => count(b.file) === 5_000);
  });

  it('splits a big batch into commits of about commitBudgetMs, one per event-loop turn', async () => {
    // A budget far below one row's cost: every commit is the smallest chunk, 200 rows.
    const b = new SampleBuffer(bufferConfig({ flushIntervalMs: 60_000, flushMaxRows: 1_000 }), ctx, { commitBudgetMs: 1e-6 });
    buffers.push(b);
    await b.start(signal);
    ctx.bus.publish(Array.from({ length: 5_000 }, (_, i) => sample('x', i, i)));
    expect(b.stats()).toEqual({ pending: 5_000, written: 0, dropped: 0 });
    await new Promise((r) => setImmediate(r));
    expect(b.stats().written).toBe(200);
    await new Promise((r) => setImmediate(r));
    expect(b.stats().written).toBe(400);
    await until(() => b.stats().pending === 0);
    expect(await ctx.metrics.getSingleMetricAsString('lineguard_buffer_commit_seconds')).toContain(
      'lineguard_buffer_commit_seconds_count 25',
    );
  });

  it('stores numbers as REAL, booleans as 0/1, strings as text, with quality and status code', async () => {
    const b = newBuffer();
    await b.start(signal);
    ctx.bus.publish([
      sample('n', 10, 2.5), sample('flag', 10, true), sample('mode', 10, 'AUTO', 'uncertain'), sample('n', 11.6, 3, 'bad', 0x80000000),
    ]);
    expect(b.flush()).toBe(4);
    const db = new BetterSqlite3(b.file, { readonly: true });
    const rows = db
      .prepare('SELECT t.name, s.ts, s.value, s.quality, s.kind, s.status, s.text FROM samples s JOIN tags t ON t.id = s.tag_id ORDER BY t.name, s.ts')
      .raw()
      .all();
    db.close();
    expect(rows).toEqual([
      ['flag', 10, 1, 0, 1, null, null],
      ['mode', 10, null, 1, 2, null, 'AUTO'],
      ['n', 10, 2.5, 0, 0, null, null],
      ['n', 12, 3, 2, 0, 0x80000000, null],
    ]);
  });

  it('a sample re-sent with the same timestamp replaces the stored one', async () => {
    const b = newBuffer();
    await b.start(signal);
    ctx.bus.publish([sample('a', 5, 1)]);
    b.flush();
    ctx.bus.publish([sample('a', 5, 2)]);
    b.flush();
    expect(count(b.file)).toBe(1);
    expect(b.lastN(['a'], 1).values[0]).toBe(2);
  });

  it('drops samples without a usable timestamp, counted', async () => {
    const b = newBuffer();
    await b.start(signal);
    ctx.bus.publish([sample('a', Number.NaN, 1), sample('a', 1, 1)]);
    b.flush();
    expect(count(b.file)).toBe(1);
    expect(b.health().details?.droppedSamples).toBe(1);
  });

  it('a malformed sample from a faulty source is dropped alone (counted, logged); the rest of its batch is stored and health stays up', async () => {
    const logs: Array<{ msg: string; dropped?: number; last?: unknown }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const b = new SampleBuffer(bufferConfig(), { ...ctx, log });
    buffers.push(b);
    await b.start(signal);
    const bad = [
      { ...sample('a', 2, 1), tag: undefined },
      { ...sample('a', 3, 1), value: { raw: 7 } },
      { ...sample('a', 4, 1), value: null },
      null,
      { ...sample('a', 5, 1), source: undefined, statusCode: { code: 5 } },
      sample('a', 1e300, 1),
      sample('a', -Infinity, 1),
    ] as unknown as TagSample[];
    ctx.bus.publish([sample('a', 1, 1), ...bad, sample('b', 6, 2)]);
    expect(b.flush()).toBe(9);
    expect(b.health()).toMatchObject({ state: 'up', details: { pendingSamples: 0, writtenSamples: 3, droppedSamples: 6 } });
    expect(count(b.file)).toBe(3);
    expect(count(b.file, 'SELECT status IS NULL FROM samples WHERE ts = 5')).toBe(1);
    const dropped = (await ctx.metrics.getSingleMetricAsString('lineguard_buffer_dropped_samples_total')) ?? '';
    expect(dropped).toMatch(/reason="invalid_sample"} 4/);
    expect(dropped).toMatch(/reason="invalid_timestamp"} 2/);
    expect(logs.filter((l) => l.msg.startsWith('dropped malformed samples'))).toEqual([
      expect.objectContaining({ dropped: 6, last: { reason: 'invalid_timestamp', tag: 'a', source: 'test/src', ts: '-Infinity' } }),
    ]);
    // Once a minute at most: the count goes on in the metric.
    ctx.bus.publish([sample('a', Number.NaN, 1)]);
    b.flush();
    expect(logs.filter((l) => l.msg.startsWith('dropped malformed samples'))).toHaveLength(1);
  });

  it('stop() commits the last batch, unsubscribes, closes, and is idempotent; a restart sees everything', async () => {
    const b = newBuffer({ flushIntervalMs: 60_000 });
    await b.start(signal);
    ctx.bus.publish([sample('a', 1, 1), sample('b', 1, 2)]);
    await b.stop();
    await b.stop();
    expect(ctx.bus.listenerCount).toBe(0);
    expect(b.health().state).toBe('stopped');
    expect(() => b.lastN(['a'], 1)).toThrow(/stopped/);
    expect(count(b.file)).toBe(2);

    const again = newBuffer();
    await again.start(signal);
    expect(again.lastN(['a', 'b'], 1).values).toEqual(new Float64Array([1, 2]));
  });

  it('exposes the outbox on the same file after start', async () => {
    const b = newBuffer();
    expect(() => b.outbox).toThrow(/not started/);
    await b.start(signal);
    const e = b.outbox.enqueue(makeAlert(1));
    expect(count(b.file, 'SELECT count(*) FROM alert_outbox')).toBe(1);
    expect(b.health().details).toMatchObject({ outboxDepth: 1 });
    b.outbox.ack(e.seq);
    expect(b.outbox.depth()).toBe(0);
  });

  it('start() fails clearly when the file cannot be opened, and health says why', async () => {
    mkdirSync(join(ctx.stateDir, 'adir.db'));
    const b = newBuffer({ file: 'adir.db' });
    await expect(b.start(signal)).rejects.toThrow(/cannot open the buffer database .*adir\.db/);
    expect(b.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/adir\.db/) });
    await b.stop();
  });

  it('refuses a database written by a newer schema version', async () => {
    const file = join(ctx.stateDir, 'lineguard.db');
    const db = new BetterSqlite3(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const b = newBuffer();
    await expect(b.start(signal)).rejects.toThrow(/newer than this version/);
  });

  it('buffer.durability: full commits samples with synchronous=FULL, normal with NORMAL (the outbox is always FULL)', async () => {
    for (const durability of ['normal', 'full'] as const) {
      const levels: number[] = [];
      const b = new SampleBuffer(bufferConfig({ durability, file: `${durability}.db` }), ctx, {
        diskReserveBytes: 0,
        configureConnection: (db) => levels.push(db.pragma('synchronous', { simple: true }) as number),
      });
      buffers.push(b);
      await b.start(signal);
      // The sample connection first, then the outbox's: 1 = NORMAL, 2 = FULL.
      expect(levels).toEqual([durability === 'full' ? 2 : 1, 2]);
      ctx.bus.publish([sample('a', 1, 1)]);
      expect(b.flush()).toBe(1);
    }
  });

  it('keeps a disk reserve sized in alerts beside the database (buffer.outbox.reserveAlerts)', async () => {
    const b = newBuffer({ outbox: { maxAlerts: 100_000, maxSize: '256MB', reserveAlerts: 10 } });
    await b.start(signal);
    expect(statSync(`${b.file}-reserve`).size).toBe(10 * RESERVE_BYTES_PER_ALERT + RESERVE_WAL_BYTES);
    expect(await ctx.metrics.getSingleMetricAsString('lineguard_buffer_disk_reserve_bytes')).toContain(
      `lineguard_buffer_disk_reserve_bytes ${10 * RESERVE_BYTES_PER_ALERT + RESERVE_WAL_BYTES}`,
    );
  });

  it('registers its metrics', async () => {
    const b = newBuffer();
    await b.start(signal);
    ctx.bus.publish([sample('a', 1, 1)]);
    b.flush();
    b.maintain();
    const text = await ctx.metrics.metrics();
    for (const name of [
      'lineguard_buffer_rows_written_total',
      'lineguard_buffer_commit_seconds_bucket',
      'lineguard_buffer_db_size_bytes{file="db"}',
      'lineguard_buffer_outbox_depth',
      'lineguard_buffer_outbox_oldest_age_seconds',
      'lineguard_buffer_pending_rows',
    ]) {
      expect(text).toContain(name);
    }
  });
});
