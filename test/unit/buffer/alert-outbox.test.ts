import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import { openDatabase } from '../../../src/buffer/database.js';
import { makeAlert } from '../../support/alert-event.js';

const log = pino({ level: 'silent' });
let dir: string;
let file: string;
const open: Array<{ close(): void }> = [];

function track<T extends { close(): void }>(x: T): T {
  open.push(x);
  return x;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lg-outbox-'));
  file = join(dir, 'buffer.db');
});

afterEach(() => {
  for (const x of open.splice(0).reverse()) x.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteAlertOutbox', () => {
  it('enqueues in seq order and peeks the oldest first, payload intact', () => {
    const outbox = track(SqliteAlertOutbox.open(file));
    const entries = [0, 1, 2].map((n) => outbox.enqueue(makeAlert(n)));
    expect(entries.map((e) => e.seq)).toEqual([entries[0]!.seq, entries[0]!.seq + 1, entries[0]!.seq + 2]);
    expect(entries[0]!.attempts).toBe(0);
    expect(outbox.depth()).toBe(3);
    const peeked = outbox.peek(2);
    expect(peeked.map((e) => e.alert.eventId)).toEqual(['evt-0', 'evt-1']);
    expect(peeked[0]!.alert).toEqual(makeAlert(0));
    expect(outbox.peekAfter(peeked[1]!.seq, 10).map((e) => e.alert.eventId)).toEqual(['evt-2']);
  });

  it('ack removes only the acknowledged entry; unknown seqs are ignored', () => {
    const outbox = track(SqliteAlertOutbox.open(file));
    const [a, b, c] = [0, 1, 2].map((n) => outbox.enqueue(makeAlert(n)));
    outbox.ack(b!.seq);
    outbox.ack(b!.seq);
    outbox.ack(999_999);
    expect(outbox.depth()).toBe(2);
    expect(outbox.peek(10).map((e) => e.seq)).toEqual([a!.seq, c!.seq]);
  });

  it('ackThrough removes the acknowledged prefix in one commit; depth, bytes and later entries stay right', () => {
    const outbox = track(SqliteAlertOutbox.open(file));
    const entries = [0, 1, 2, 3].map((n) => outbox.enqueue(makeAlert(n)));
    const lastBytes = Buffer.byteLength(JSON.stringify(makeAlert(3)));
    outbox.ackThrough(entries[2]!.seq);
    expect(outbox.depth()).toBe(1);
    expect(outbox.bytes()).toBe(lastBytes);
    outbox.ackThrough(entries[2]!.seq);
    outbox.ack(entries[1]!.seq);
    expect(outbox.depth()).toBe(1);
    expect(outbox.peek(10).map((e) => e.seq)).toEqual([entries[3]!.seq]);
    outbox.close();
    expect(track(SqliteAlertOutbox.open(file)).depth()).toBe(1);
  });

  it('an enqueued alert is in the file before enqueue returns, and survives reopening', () => {
    const outbox = track(SqliteAlertOutbox.open(file));
    const entry = outbox.enqueue(makeAlert(7));
    // A second connection (as another process would) sees the committed row at once.
    const other = track(new BetterSqlite3(file, { readonly: true }));
    expect(other.prepare('SELECT event_id FROM alert_outbox WHERE seq = ?').get(entry.seq)).toEqual({ event_id: 'evt-7' });
    outbox.close();
    const reopened = track(SqliteAlertOutbox.open(file));
    expect(reopened.depth()).toBe(1);
    expect(reopened.peek(1)[0]).toMatchObject({ seq: entry.seq, alert: makeAlert(7) });
  });

  it('never reuses a seq, even after the queue was emptied and reopened', () => {
    let outbox = track(SqliteAlertOutbox.open(file));
    const first = outbox.enqueue(makeAlert(0));
    outbox.ack(first.seq);
    outbox.close();
    outbox = track(SqliteAlertOutbox.open(file));
    expect(outbox.depth()).toBe(0);
    expect(outbox.enqueue(makeAlert(1)).seq).toBeGreaterThan(first.seq);
  });

  it('drops the oldest alerts when the count bound is reached, and counts them', async () => {
    const metrics = new Registry();
    const outbox = track(SqliteAlertOutbox.open(file, { maxAlerts: 3, log, metrics }));
    for (let n = 0; n < 5; n++) outbox.enqueue(makeAlert(n));
    expect(outbox.depth()).toBe(3);
    expect(outbox.droppedCount).toBe(2);
    expect(outbox.peek(10).map((e) => e.alert.eventId)).toEqual(['evt-2', 'evt-3', 'evt-4']);
    const text = await metrics.metrics();
    expect(text).toContain('lineguard_buffer_dropped_alerts_total{reason="outbox_full"} 2');
    expect(text).toContain('lineguard_buffer_outbox_depth 3');
  });

  it('drops the oldest alerts when the size bound is reached', () => {
    const size = Buffer.byteLength(JSON.stringify(makeAlert(0)));
    const outbox = track(SqliteAlertOutbox.open(file, { maxBytes: size * 2 + 10 }));
    for (let n = 0; n < 4; n++) outbox.enqueue(makeAlert(n));
    expect(outbox.depth()).toBe(2);
    expect(outbox.bytes()).toBeLessThanOrEqual(size * 2 + 10);
    expect(outbox.peek(10).map((e) => e.alert.eventId)).toEqual(['evt-2', 'evt-3']);
  });

  it('refuses an alert larger than the whole outbox, keeping the others; lost only once the producer gives it up', async () => {
    const metrics = new Registry();
    const outbox = track(SqliteAlertOutbox.open(file, { maxBytes: 2000, metrics }));
    outbox.enqueue(makeAlert(0));
    const big = makeAlert(1, { message: 'x'.repeat(5000) });
    expect(() => outbox.enqueue(big)).toThrow(RangeError);
    expect(() => outbox.enqueue(big)).toThrow(RangeError);
    expect(outbox.depth()).toBe(1);
    // Refusals are retried by the producer: not losses by themselves.
    expect(outbox.droppedCount).toBe(0);
    outbox.reportLost(big);
    outbox.reportLost(big);
    expect(outbox.droppedCount).toBe(1);
    expect(await metrics.metrics()).toContain('lineguard_buffer_dropped_alerts_total{reason="too_large"} 1');
  });

  it('reportLost logs each lost alert once with its alertId', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
    const outbox = track(SqliteAlertOutbox.open(file, { log: logger }));
    outbox.reportLost(makeAlert(4), 'disk_full');
    outbox.reportLost(makeAlert(4), 'disk_full');
    outbox.reportLost(makeAlert(6), 'write_error');
    const lost = lines.filter((l) => l.msg === 'alert lost: it could not be stored in the outbox');
    expect(lost.map((l) => [l.alertId, l.eventId, l.reason])).toEqual([['alert-2', 'evt-4', 'disk_full'], ['alert-3', 'evt-6', 'write_error']]);
    expect(outbox.droppedCount).toBe(2);
  });

  it('tells listeners after the commit; a throwing listener does not break enqueue; unsubscribe works', () => {
    const outbox = track(SqliteAlertOutbox.open(file));
    const reader = track(new BetterSqlite3(file, { readonly: true }));
    const seen: number[] = [];
    const offBad = outbox.onEnqueue(() => {
      throw new Error('listener bug');
    });
    const off = outbox.onEnqueue(() => {
      seen.push((reader.prepare('SELECT count(*) AS n FROM alert_outbox').get() as { n: number }).n);
    });
    outbox.enqueue(makeAlert(0));
    outbox.enqueue(makeAlert(1));
    off();
    offBad();
    outbox.enqueue(makeAlert(2));
    expect(seen).toEqual([1, 2]);
  });

  it('reports the age of the oldest waiting alert', () => {
    let now = 1_000_000;
    const outbox = track(SqliteAlertOutbox.open(file, { now: () => now }));
    expect(outbox.oldestAgeMs()).toBe(0);
    const a = outbox.enqueue(makeAlert(0));
    now += 5_000;
    outbox.enqueue(makeAlert(1));
    now += 1_000;
    expect(outbox.oldestAgeMs()).toBe(6_000);
    outbox.ack(a.seq);
    expect(outbox.oldestAgeMs()).toBe(1_000);
  });

  it('counts delivery attempts', () => {
    const outbox = track(SqliteAlertOutbox.open(file));
    const e = outbox.enqueue(makeAlert(0));
    outbox.recordAttempt(e.seq);
    outbox.recordAttempt(e.seq);
    expect(outbox.peek(1)[0]!.attempts).toBe(2);
  });

  it('close() closes a connection it opened, but not one it was given', () => {
    const db = track(openDatabase(file, { synchronous: 'FULL' }));
    const given = new SqliteAlertOutbox(db, { maxAlerts: 10, maxBytes: 1e6, log });
    given.enqueue(makeAlert(0));
    given.close();
    given.close();
    expect(() => given.enqueue(makeAlert(1))).toThrow(/closed/);
    expect(db.open).toBe(true);
    const owned = SqliteAlertOutbox.open(file);
    owned.close();
    expect(() => owned.depth()).not.toThrow();
    expect(() => owned.peek(1)).toThrow(/closed/);
  });

  describe('on a full disk (SQLITE_FULL through max_page_count)', () => {
    /** A database whose samples fill it to the page limit, so the next alert does not fit. */
    function fullDatabase(): BetterSqlite3.Database {
      const db = track(openDatabase(file, { synchronous: 'FULL' }));
      const insert = db.prepare('INSERT INTO samples (tag_id, ts, value, quality, kind) VALUES (1, ?, ?, 0, 0)');
      db.transaction(() => {
        for (let i = 0; i < 20_000; i++) insert.run(i, i * 0.5);
      })();
      db.pragma('wal_checkpoint(TRUNCATE)');
      const pages = db.pragma('page_count', { simple: true }) as number;
      db.pragma(`max_page_count = ${pages}`);
      return db;
    }

    it('deletes telemetry first, then stores the alert', () => {
      const db = fullDatabase();
      const deleteSamples = db.prepare('DELETE FROM samples WHERE ts < 10000');
      let calls = 0;
      const outbox = new SqliteAlertOutbox(db, {
        maxAlerts: 100, maxBytes: 1e6, log,
        makeRoom: () => {
          calls++;
          return deleteSamples.run().changes > 0;
        },
      });
      // Fill the remaining free space with alerts until the disk is "full" and makeRoom is needed.
      for (let n = 0; calls === 0 && n < 5000; n++) outbox.enqueue(makeAlert(n, { message: 'm'.repeat(2000) }));
      expect(calls).toBe(1);
      expect(outbox.droppedCount).toBe(0);
      expect((db.prepare('SELECT count(*) AS n FROM samples').get() as { n: number }).n).toBe(10_000);
    });

    it('drops the oldest alerts (counted) when there is no telemetry left to delete', async () => {
      const db = fullDatabase();
      db.exec('DELETE FROM samples');
      const metrics = new Registry();
      const outbox = new SqliteAlertOutbox(db, { maxAlerts: 100_000, maxBytes: 1e9, log, metrics, makeRoom: () => false });
      let n = 0;
      while (outbox.droppedCount === 0 && n < 20_000) outbox.enqueue(makeAlert(n++, { message: 'm'.repeat(2000) }));
      expect(outbox.droppedCount).toBeGreaterThan(0);
      const newest = outbox.peek(100_000).at(-1)!;
      expect(newest.alert.eventId).toBe(`evt-${n - 1}`);
      expect(outbox.peek(1)[0]!.alert.eventId).not.toBe('evt-0');
      expect(await metrics.metrics()).toMatch(/lineguard_buffer_dropped_alerts_total\{reason="disk_full"\} [1-9]/);
      expect((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check).toBe('ok');
    });

    it('throws SQLITE_FULL (not counted until reported lost) when nothing can be freed, leaving the database intact', () => {
      const db = fullDatabase();
      const outbox = new SqliteAlertOutbox(db, { maxAlerts: 100, maxBytes: 1e9, log, makeRoom: () => false });
      // 20 KB needs overflow pages the page limit does not allow; no alerts are waiting that could be dropped.
      let error: unknown;
      try {
        outbox.enqueue(makeAlert(0, { message: 'm'.repeat(20_000) }));
      } catch (err) {
        error = err;
      }
      expect((error as { code?: string }).code).toBe('SQLITE_FULL');
      expect(outbox.droppedCount).toBe(0);
      expect(outbox.depth()).toBe(0);
      // The producer gives it up: lost, for the reason of the refusal.
      outbox.reportLost(makeAlert(0));
      expect(outbox.droppedCount).toBe(1);
      expect((db.pragma('integrity_check') as Array<{ integrity_check: string }>)[0]!.integrity_check).toBe('ok');
    });
  });
});
