import BetterSqlite3 from 'better-sqlite3';
import { closeSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import { SampleBuffer, type SampleBufferTuning } from '../../../src/buffer/sample-buffer.js';
import type { BufferConfig } from '../../../src/buffer/config.js';
import type { TagSample } from '../../../src/core/tag-sample.js';
import { RESERVE_BYTES_PER_ALERT, RESERVE_WAL_BYTES } from '../../../src/buffer/disk-reserve.js';
import { bufferConfig, bufferContext, sample } from '../../unit/buffer/buffer-context.js';
import { makeAlert } from '../../support/alert-event.js';
import { SmallFs } from './small-fs.js';

const signal = new AbortController().signal;
let ctx: ReturnType<typeof bufferContext>;
let buffer: SampleBuffer | undefined;
/** Sample time: recent, so retention by age (7 days) keeps everything. */
let ts = Date.now() - 3600_000;

function batch(rows: number): TagSample[] {
  const out: TagSample[] = [];
  for (let i = 0; i < rows; i++) out.push(sample(`tag${i % 8}`, (ts += 1), Math.random()));
  return out;
}

async function start(cfg: Partial<BufferConfig>, tuning: Partial<SampleBufferTuning>): Promise<SampleBuffer> {
  buffer = new SampleBuffer(
    bufferConfig({ flushIntervalMs: 60_000, flushMaxRows: 5_000, memoryMaxSamples: 30_000, ...cfg }),
    ctx,
    { retryInitialMs: 1, retryMaxMs: 2, maintenanceIntervalMs: 60_000, ...tuning },
  );
  await buffer.start(signal);
  return buffer;
}

/** Publishes and commits batches until a commit fails; returns how many rows were stored. */
function fillUntilFull(b: SampleBuffer): void {
  for (let i = 0; i < 2_000 && b.health().state === 'up'; i++) {
    ctx.bus.publish(batch(5_000));
    b.flush();
  }
  expect(b.health().state).toBe('degraded');
}

async function metric(name: string): Promise<string> {
  return (await ctx.metrics.getSingleMetricAsString(name)) ?? '';
}

/** Runs `read` on a read-only connection of its own to `file`. */
function readOnly<T>(file: string, read: (db: BetterSqlite3.Database) => T): T {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

function integrity(file: string): string {
  return readOnly(file, (db) => db.pragma('integrity_check', { simple: true }) as string);
}

beforeEach(() => {
  ctx = bufferContext();
});

afterEach(async () => {
  await buffer?.stop();
  buffer = undefined;
  ctx.cleanup();
});

/** The checks both ways of filling the disk share. */
async function fullDiskScenario(b: SampleBuffer, makeRoom: () => void): Promise<void> {
  const before = b.outbox.enqueue(makeAlert(0));
  fillUntilFull(b);
  const health = b.health();
  expect(health.reason).toMatch(/cannot write the database .*SQLITE_FULL/);
  expect(health.details?.pendingSamples).toBeGreaterThan(0);
  expect(await metric('lineguard_buffer_write_errors_total')).toMatch(/code="SQLITE_FULL"} [1-9]/);

  // Telemetry goes before alerts: the alert is committed although the disk is full.
  // 300 KB is more than the free pages a failed 5,000-row commit can leave behind: it needs room made.
  const during = b.outbox.enqueue(makeAlert(1, { message: 'x'.repeat(300_000) }));
  expect(b.outbox.peek(10).map((e) => e.seq)).toEqual([before.seq, during.seq]);
  expect(b.outbox.droppedCount).toBe(0);

  // Samples wait in memory up to memoryMaxSamples; the oldest beyond are dropped and counted.
  ctx.bus.publish(batch(40_000));
  b.flush();
  // (Some may have been committed into the room deleted for the alert: telemetry gets what alerts do not need.)
  const pending = b.health().details?.pendingSamples as number;
  expect(pending).toBeGreaterThan(0);
  expect(pending).toBeLessThanOrEqual(30_000);
  expect(b.health().state).toBe('degraded');
  expect(await metric('lineguard_buffer_dropped_samples_total')).toMatch(/reason="memory_bound"} [1-9]/);

  // Space comes back: the held samples are committed and health recovers.
  makeRoom();
  b.flush();
  b.maintain();
  expect(b.health()).toMatchObject({ state: 'up', details: { pendingSamples: 0, outboxDepth: 2 } });
  const newest = b.lastN(['tag0'], 1);
  expect(newest.ts[0]).toBeGreaterThan(ts - 10);
}

describe('full disk', () => {
  it('on a small tmpfs: SQLITE_FULL is survived, alerts still fit, recovery when space returns; a read-only mount fails start clearly', async (test) => {
    const fs = SmallFs.mount(6 * 1024 * 1024);
    if (!fs) {
      test.skip('cannot mount a tmpfs here (not root): the max_page_count test covers the logic');
      return;
    }
    try {
      const file = join(fs.dir, 'full.db');
      const b = await start({ file }, { walAutocheckpointPages: 64, diskReserveBytes: 512 * 1024 });
      await fullDiskScenario(b, () => fs.resize(64 * 1024 * 1024));
      expect(integrity(file)).toBe('ok');

      await b.stop();
      expect(integrity(file)).toBe('ok');

      // Restarted on a read-only file system: start fails with a clear error, health is down, nothing crashes.
      fs.readOnly(true);
      const ro = new SampleBuffer(bufferConfig({ file }), ctx);
      await expect(ro.start(signal)).rejects.toThrow(/cannot open the buffer database/);
      expect(ro.health().state).toBe('down');
      await ro.stop();
      fs.readOnly(false);
      const again = await start({ file }, {});
      expect(again.health().state).toBe('up');
      expect(again.outbox.depth()).toBe(2);
    } finally {
      await buffer?.stop();
      fs.unmount();
    }
  });

  it('read-only at run time (SQLITE_READONLY through PRAGMA query_only): samples held, alert refused and counted, recovery', async () => {
    // A real file system cannot be remounted read-only under open files from a test (the kernel answers EBUSY; it
    // does so itself only on I/O errors), so the same SQLite error is produced at the connection.
    const connections: BetterSqlite3.Database[] = [];
    const b = await start({}, { configureConnection: (db) => connections.push(db) });
    ctx.bus.publish(batch(100));
    b.flush();
    for (const db of connections) db.pragma('query_only = 1');
    ctx.bus.publish(batch(1_000));
    b.flush();
    const health = b.health();
    expect(health).toMatchObject({ state: 'degraded', details: { pendingSamples: 1_000, writeError: 'SQLITE_READONLY' } });
    expect(() => b.outbox.enqueue(makeAlert(0))).toThrow(/readonly/);
    expect(() => b.outbox.enqueue(makeAlert(2))).toThrow(/readonly/);
    // Refused, and retried by the runtime: not lost until the runtime gives one up.
    expect(b.outbox.droppedCount).toBe(0);
    b.outbox.reportLost(makeAlert(2));
    expect(b.outbox.droppedCount).toBe(1);
    expect(b.health().reason).toMatch(/1 alerts dropped/);
    expect(await metric('lineguard_buffer_dropped_alerts_total')).toMatch(/reason="write_error"} 1/);
    for (const db of connections) db.pragma('query_only = 0');
    b.flush();
    expect(b.health().details).toMatchObject({ pendingSamples: 0, writtenSamples: 1_100 });
  });

  it('through max_page_count: SQLITE_FULL is survived, alerts still fit, recovery when the limit is raised', async () => {
    const connections: BetterSqlite3.Database[] = [];
    const b = await start(
      {},
      {
        diskReserveBytes: 0,
        configureConnection: (db) => {
          connections.push(db);
          db.pragma('max_page_count = 600');
        },
      },
    );
    await fullDiskScenario(b, () => {
      for (const db of connections) db.pragma('max_page_count = 100000');
    });
    expect(await metric('lineguard_buffer_pruned_rows_total')).toMatch(/reason="disk_full"} [1-9]/);
    await b.stop();
    expect(integrity(join(ctx.stateDir, 'lineguard.db'))).toBe('ok');
  });
});

describe('alerts first under a page limit (max_page_count: runs everywhere)', () => {
  it('a flood of samples with alerts enqueued steadily: 0 alert events lost, telemetry shed and counted, WAL bounded, writing resumes', async () => {
    const connections: BetterSqlite3.Database[] = [];
    const b = await start(
      { flushIntervalMs: 20, flushMaxRows: 5_000, memoryMaxSamples: 30_000 },
      {
        retryInitialMs: 5, retryMaxMs: 20, maintenanceIntervalMs: 50, diskReserveBytes: 0,
        configureConnection: (db) => {
          connections.push(db);
          db.pragma('max_page_count = 1500');
        },
      },
    );
    const file = join(ctx.stateDir, 'lineguard.db');
    const stored: string[] = [];
    let refused = 0;
    let n = 0;
    let maxWal = 0;
    const deadline = performance.now() + 15_000;
    // Until the limit is reached, then 100 turns (200 alerts) more on the "full disk".
    let fullTurns = 0;
    while (fullTurns < 100 && performance.now() < deadline) {
      if (b.health().details?.writeError === 'SQLITE_FULL') fullTurns++;
      ctx.bus.publish(batch(2_000));
      for (let i = 0; i < 2; i++) {
        const alert = makeAlert(n++, {}, 60);
        try {
          b.outbox.enqueue(alert);
          stored.push(alert.eventId);
        } catch {
          refused++;
        }
      }
      // (Before the limit is reached the WAL is SQLite's own business: wal_autocheckpoint, 16 MB.)
      if (b.health().details?.writeError === 'SQLITE_FULL') maxWal = Math.max(maxWal, sizeOf(`${file}-wal`));
      await turn();
    }
    expect(b.health().details?.writeError).toBe('SQLITE_FULL');
    expect(refused).toBe(0);
    expect(b.outbox.droppedCount).toBe(0);
    expect(b.outbox.peek(100_000).map((e) => e.alert.eventId)).toEqual(stored);
    expect(await seriesValue('lineguard_buffer_dropped_samples_total', 'reason="memory_bound"')).toBeGreaterThan(0);
    expect(await seriesValue('lineguard_buffer_pruned_rows_total', 'reason="disk_full"')).toBeGreaterThan(0);
    // Under pressure every failed commit checkpoints, and so does a commit past 1 MB of WAL: a few commits' worth,
    // not wal_autocheckpoint's 16 MB.
    expect(await seriesValue('lineguard_buffer_wal_checkpoints_total', 'reason="write_failed",result="complete"')).toBeGreaterThan(0);
    expect(maxWal).toBeGreaterThan(0);
    expect(maxWal).toBeLessThan(2 * 1024 * 1024);

    for (const db of connections) db.pragma('max_page_count = 1000000');
    const recovery = performance.now() + 10_000;
    while ((b.health().state !== 'up' || b.stats().pending > 0) && performance.now() < recovery) await turn();
    expect(b.health()).toMatchObject({ state: 'up', details: { pendingSamples: 0 } });
    expect(b.lastN(['tag7'], 1).ts[0]).toBe(ts);
    await b.stop();
    expect(integrity(file)).toBe('ok');
  }, 30_000);
});

/** Writes zeros to `path` until the file system refuses (ENOSPC). */
function fillDisk(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full.
  } finally {
    closeSync(fd);
  }
}

function rowsOnDisk(file: string): number[] {
  return readOnly(file, (db) => db.prepare('SELECT seq FROM alert_outbox ORDER BY seq').pluck().all() as number[]);
}

describe('acknowledging alerts on a full disk', () => {
  it('ack and ackThrough throw SQLITE_FULL and keep depth equal to the file; recordAttempt does not throw; both work once space is back', async (test) => {
    const fs = SmallFs.mount(2 * 1024 * 1024);
    if (!fs) {
      test.skip('cannot mount a tmpfs here (not root)');
      return;
    }
    const file = join(fs.dir, 'outbox.db');
    const filler = join(fs.dir, 'filler');
    const outbox = SqliteAlertOutbox.open(file);
    try {
      const seqs = Array.from({ length: 20 }, (_, n) => outbox.enqueue(makeAlert(n, { message: 'x'.repeat(2_000) })).seq);
      fillDisk(filler);

      // The deletes need room in the write-ahead log: the commit fails, and the outbox must say so instead of
      // counting the alerts as gone while the file still holds them.
      expect(() => outbox.ack(seqs[0]!)).toThrow(expect.objectContaining({ code: 'SQLITE_FULL' }));
      expect(() => outbox.ackThrough(seqs[9]!)).toThrow(expect.objectContaining({ code: 'SQLITE_FULL' }));
      expect(outbox.depth()).toBe(20);
      expect(outbox.peek(100).map((e) => e.seq)).toEqual(seqs);
      // Counting a re-send is informational: it must not throw into the sink's publish path.
      expect(() => outbox.recordAttempt(seqs[0]!)).not.toThrow();

      unlinkSync(filler);
      outbox.ack(seqs[0]!);
      outbox.ackThrough(seqs[9]!);
      expect(outbox.depth()).toBe(10);
      outbox.ackThrough(seqs[9]!);
      expect(outbox.depth()).toBe(10);
      expect(outbox.peek(100).map((e) => e.seq)).toEqual(seqs.slice(10));
      outbox.close();
      expect(rowsOnDisk(file)).toEqual(seqs.slice(10));
    } finally {
      outbox.close();
      fs.unmount();
    }
  });
});

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Value of one series of a counter or gauge in the registry text, 0 when absent. */
async function seriesValue(name: string, labels = ''): Promise<number> {
  const text = await metric(name);
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('alerts first on a 20 MB tmpfs under a flood of samples', () => {
  const MB = 1024 * 1024;
  let fs: SmallFs | undefined;

  beforeAll(() => {
    fs = SmallFs.mount(20 * MB);
    if (!fs) console.log('full-disk flood test skipped: cannot mount a tmpfs here (needs root); the max_page_count test covers the logic');
  });
  afterAll(() => {
    fs?.unmount();
  });

  it('0 alert events lost while the reserve holds, telemetry shed and counted, WAL bounded, writing resumes when space returns', async (test) => {
    if (!fs) {
      test.skip('cannot mount a tmpfs here (not root)');
      return;
    }
    const dir = fs.dir;
    const file = join(dir, 'flood.db');
    // Another writer on the same file system took most of it: 7 MB are left for the buffer and its reserve.
    const filler = join(dir, 'someone-else');
    const fd = openSync(filler, 'w');
    writeSync(fd, Buffer.alloc(13 * MB));
    closeSync(fd);
    const reserveAlerts = 300;
    const reserveTarget = reserveAlerts * RESERVE_BYTES_PER_ALERT + RESERVE_WAL_BYTES;
    const b = await start(
      { file, flushIntervalMs: 20, flushMaxRows: 5_000, memoryMaxSamples: 30_000, outbox: { maxAlerts: 100_000, maxSize: '256MB', reserveAlerts } },
      { retryInitialMs: 10, retryMaxMs: 50, maintenanceIntervalMs: 50 },
    );
    expect(sizeOf(`${file}-reserve`)).toBe(reserveTarget);

    const stored: string[] = [];
    const refused: unknown[] = [];
    let n = 0;
    let maxWal = 0;
    let published = 0;
    /** One turn of the line: 5,000 samples (8 tags), `alerts` alerts of 1.5 KB, the event loop let run. */
    const step = async (alerts: number): Promise<void> => {
      ctx.bus.publish(batch(5_000));
      published += 5_000;
      for (let i = 0; i < alerts; i++) {
        const alert = makeAlert(n++, {}, 60);
        try {
          b.outbox.enqueue(alert);
          stored.push(alert.eventId);
        } catch (err) {
          refused.push(err);
        }
      }
      maxWal = Math.max(maxWal, sizeOf(`${file}-wal`));
      await turn();
    };

    // An alert every other turn until the disk is full, then a storm: 1,500 alerts (2 MB) on the full disk, more
    // than the room the failed sample commits left, so stored telemetry has to go.
    const deadline = performance.now() + 20_000;
    while (b.health().details?.writeError !== 'SQLITE_FULL' && performance.now() < deadline) await step(published % 10_000 === 0 ? 1 : 0);
    expect(b.health().details?.writeError).toBe('SQLITE_FULL');
    const atFull = n;
    while (n < atFull + 1_500 && performance.now() < deadline) await step(10);
    expect(n).toBe(atFull + 1_500);

    // No alert event lost or refused: every one is in the outbox, in order.
    expect(refused).toEqual([]);
    expect(b.outbox.droppedCount).toBe(0);
    expect(await seriesValue('lineguard_buffer_dropped_alerts_total')).toBe(0);
    expect(b.outbox.peek(100_000).map((e) => e.alert.eventId)).toEqual(stored);
    // Telemetry was shed, and counted: samples waiting in memory beyond the bound, stored ones deleted for alerts.
    const health = b.health();
    expect(health.state).toBe('degraded');
    expect(health.details?.pendingSamples).toBeLessThanOrEqual(30_000);
    expect(await seriesValue('lineguard_buffer_dropped_samples_total', 'reason="memory_bound"')).toBeGreaterThan(0);
    expect(await seriesValue('lineguard_buffer_pruned_rows_total', 'reason="disk_full"')).toBeGreaterThan(0);
    // The WAL never took the disk: it was checkpointed into the database, and stays far below the free room it had.
    expect(maxWal).toBeLessThan(4 * MB);
    expect(sizeOf(file)).toBeGreaterThan(2 * MB);
    expect(await seriesValue('lineguard_buffer_wal_checkpoints_total', 'reason="low_space",result="complete"')).toBeGreaterThan(0);

    // Space comes back: the reserve is whole again, samples are written again, health recovers.
    unlinkSync(filler);
    const recovery = performance.now() + 10_000;
    while ((b.health().state !== 'up' || b.stats().pending > 0) && performance.now() < recovery) await turn();
    expect(b.health()).toMatchObject({ state: 'up', details: { pendingSamples: 0 } });
    expect(sizeOf(`${file}-reserve`)).toBe(reserveTarget);
    const written = b.stats().written;
    ctx.bus.publish(batch(1_000));
    b.flush();
    expect(b.stats().written).toBe(written + 1_000);
    expect(b.lastN(['tag7'], 1).ts[0]).toBe(ts);
    const after = makeAlert(n++, {}, 60);
    b.outbox.enqueue(after);
    expect(b.outbox.depth()).toBe(stored.length + 1);
    await b.stop();
    expect(integrity(file)).toBe('ok');
  }, 40_000);

  it('with no telemetry left to delete, the reserve holds at least reserveAlerts alerts; then the oldest go, counted', async (test) => {
    if (!fs) {
      test.skip('cannot mount a tmpfs here (not root)');
      return;
    }
    const file = join(fs.dir, 'reserve.db');
    const reserveAlerts = 200;
    const b = await start({ file, outbox: { maxAlerts: 100_000, maxSize: '256MB', reserveAlerts } }, {});
    // Someone else fills the disk: no sample is stored, so only the reserve can take alerts.
    const filler = join(fs.dir, 'someone-else');
    fillDisk(filler);
    let accepted = 0;
    let refusedAt: number | undefined;
    for (let i = 0; i < 5_000 && b.outbox.droppedCount === 0 && refusedAt === undefined; i++) {
      try {
        b.outbox.enqueue(makeAlert(i, {}, 60));
        accepted++;
      } catch {
        refusedAt = i;
      }
    }
    expect(accepted).toBeGreaterThanOrEqual(reserveAlerts);
    expect(sizeOf(`${file}-reserve`)).toBeLessThan(RESERVE_WAL_BYTES);
    expect(await seriesValue('lineguard_buffer_disk_reserve_bytes')).toBe(sizeOf(`${file}-reserve`));
    // Samples are not written while the reserve is lent.
    ctx.bus.publish(batch(100));
    expect(b.flush()).toBe(0);
    expect(b.health().reason).toMatch(/no room to make the disk reserve kept for alerts whole again/);

    unlinkSync(filler);
    b.flush();
    expect(b.stats().pending).toBe(0);
    expect(sizeOf(`${file}-reserve`)).toBe(reserveAlerts * RESERVE_BYTES_PER_ALERT + RESERVE_WAL_BYTES);
    await b.stop();
    expect(integrity(file)).toBe('ok');
  });
});
