import BetterSqlite3 from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import { openDatabase } from '../../../src/buffer/database.js';
import type { AlertOutbox, OutboxEntry } from '../../../src/core/alert.js';
import { AlertDrain, type PublishFn } from '../../../src/connectors/mqtt/alert-drain.js';
import { makeAlert } from '../../support/alert-event.js';

/**
 * The drain's window and ordering rules, against the real SQLite outbox. The "broker" here is a publish function
 * the test answers by hand, because a real broker cannot be made to send PUBACKs out of order or refuse a publish
 * on cue; the real broker paths are in test/integration/mqtt.
 */
interface Sent {
  entry: OutboxEntry;
  done: (err?: Error | null) => void;
}

let dir: string;
let outbox: SqliteAlertOutbox;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lineguard-drain-'));
  outbox = SqliteAlertOutbox.open(join(dir, 'outbox.db'));
});

afterEach(() => {
  vi.useRealTimers();
  outbox.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A drain over `box` (the test's outbox by default); outbox errors are collected and must be expected. */
function drainWith(maxInFlight: number, box: AlertOutbox = outbox) {
  const sent: Sent[] = [];
  const delivered: number[] = [];
  const errors: number[] = [];
  const outboxErrors: unknown[] = [];
  const drain = new AlertDrain(box, {
    maxInFlight,
    onDelivered: (seq) => delivered.push(seq),
    onPublishError: (_err, seq) => errors.push(seq),
    onOutboxError: (err) => outboxErrors.push(err),
    retry: { initialMs: 5, maxMs: 20 },
  });
  const publish: PublishFn = (entry, done) => sent.push({ entry, done });
  return { drain, publish, sent, delivered, errors, outboxErrors };
}

/** Counts the outbox's `ackThrough` calls (the real method still runs). */
function countAckThrough(box: SqliteAlertOutbox): number[] {
  const calls: number[] = [];
  const real = box.ackThrough.bind(box);
  box.ackThrough = (seq: number): void => {
    calls.push(seq);
    real(seq);
  };
  return calls;
}

/** PUBACKs answered in one turn are deleted at the end of it (setImmediate): wait for that. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const ids = (entries: Sent[]): string[] => entries.map((s) => s.entry.alert.eventId);
const waitFor = async (check: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('AlertDrain', () => {
  it('keeps at most maxInFlight publishes outstanding and delivers everything in order', async () => {
    for (let i = 0; i < 25; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent, delivered, outboxErrors } = drainWith(4);
    drain.attach(publish);
    expect(sent).toHaveLength(4);
    let answered = 0;
    while (answered < sent.length) {
      sent[answered++]!.done(null);
      expect(drain.pending).toBeLessThanOrEqual(4);
    }
    expect(ids(sent)).toEqual(Array.from({ length: 25 }, (_, i) => `evt-${i}`));
    await nextTurn();
    expect(delivered).toEqual(sent.map((s) => s.entry.seq));
    expect(outbox.depth()).toBe(0);
    expect(outboxErrors).toEqual([]);
  });

  it('deletes the PUBACKs of one turn with one ackThrough, and reports them delivered only after the delete', async () => {
    for (let i = 0; i < 10; i++) outbox.enqueue(makeAlert(i));
    const calls = countAckThrough(outbox);
    const { drain, publish, sent, delivered, outboxErrors } = drainWith(10);
    drain.attach(publish);
    for (const s of sent) s.done(null);
    expect(calls).toEqual([]);
    expect(delivered).toEqual([]);
    expect(outbox.depth()).toBe(10);
    await nextTurn();
    expect(calls).toEqual([sent[9]!.entry.seq]);
    expect(delivered).toEqual(sent.map((s) => s.entry.seq));
    expect(outbox.depth()).toBe(0);
    expect(outboxErrors).toEqual([]);
  });

  it('deletes only the acknowledged prefix when PUBACKs come back out of order', async () => {
    for (let i = 0; i < 5; i++) outbox.enqueue(makeAlert(i));
    const calls = countAckThrough(outbox);
    const { drain, publish, sent, delivered } = drainWith(10);
    drain.attach(publish);
    const seq = (i: number): number => sent[i]!.entry.seq;
    sent[4]!.done(null);
    sent[2]!.done(null);
    sent[1]!.done(null);
    await nextTurn();
    expect(calls).toEqual([]);
    expect(outbox.depth()).toBe(5);
    expect(delivered).toEqual([]);
    sent[0]!.done(null);
    await nextTurn();
    // 0..2 are a contiguous acknowledged prefix; 4 is acknowledged but 3 is not, so 4 stays.
    expect(calls).toEqual([seq(2)]);
    expect(outbox.peek(10).map((e) => e.seq)).toEqual([seq(3), seq(4)]);
    expect(delivered).toEqual([seq(0), seq(1), seq(2)]);
    sent[3]!.done(null);
    await nextTurn();
    expect(calls).toEqual([seq(2), seq(4)]);
    expect(outbox.depth()).toBe(0);
    expect(delivered).toEqual(sent.map((s) => s.entry.seq));
  });

  it('keeps the alerts when the delete fails, and sends them again once the outbox can delete', async () => {
    // A real failing commit: another connection holds the write lock, and this outbox does not wait for it.
    const file = join(dir, 'locked.db');
    const db = openDatabase(file, { synchronous: 'FULL' });
    db.pragma('busy_timeout = 0');
    const box = new SqliteAlertOutbox(db, { maxAlerts: 1000, maxBytes: 10_000_000, log: pino({ level: 'silent' }) });
    const locker = new BetterSqlite3(file);
    try {
      for (let i = 0; i < 3; i++) box.enqueue(makeAlert(i));
      const { drain, publish, sent, delivered, outboxErrors } = drainWith(10, box);
      drain.attach(publish);
      locker.exec('BEGIN IMMEDIATE');
      for (const s of sent) s.done(null);
      await nextTurn();
      expect(outboxErrors).toEqual([expect.objectContaining({ code: 'SQLITE_BUSY' })]);
      expect(delivered).toEqual([]);
      expect(box.depth()).toBe(3);
      expect(box.peek(10).map((e) => e.alert.eventId)).toEqual(['evt-0', 'evt-1', 'evt-2']);
      locker.exec('COMMIT');

      // After the backoff, the window restarts from the oldest alert still in the outbox.
      await waitFor(() => sent.length === 6);
      expect(ids(sent.slice(3))).toEqual(['evt-0', 'evt-1', 'evt-2']);
      for (const s of sent.slice(3)) s.done(null);
      await nextTurn();
      expect(box.depth()).toBe(0);
      expect(delivered).toEqual(sent.slice(3).map((s) => s.entry.seq));
      expect(outboxErrors).toHaveLength(1);
      drain.close();
    } finally {
      if (locker.inTransaction) locker.exec('ROLLBACK');
      locker.close();
      box.close();
      db.close();
    }
  });

  it('deletes what was PUBACKed before a detach, so the next attach does not send it again', async () => {
    for (let i = 0; i < 2; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent, delivered } = drainWith(10);
    drain.attach(publish);
    sent[0]!.done(null);
    drain.detach();
    expect(delivered).toEqual([sent[0]!.entry.seq]);
    expect(outbox.peek(10).map((e) => e.alert.eventId)).toEqual(['evt-1']);
    drain.attach(publish);
    expect(ids(sent.slice(2))).toEqual(['evt-1']);
    await nextTurn();
    expect(outbox.depth()).toBe(1);
  });

  it('publishes nothing while detached and forgets what was in flight; the next attach starts from the oldest', () => {
    const { drain, publish, sent } = drainWith(10);
    outbox.enqueue(makeAlert(0));
    drain.pump();
    expect(sent).toHaveLength(0);
    drain.attach(publish);
    outbox.enqueue(makeAlert(1));
    drain.pump();
    expect(ids(sent)).toEqual(['evt-0', 'evt-1']);
    sent[1]!.done(null);
    drain.detach();
    sent[0]!.done(null); // a PUBACK from the dead connection must not delete anything
    expect(outbox.depth()).toBe(2);
    drain.attach(publish);
    expect(ids(sent.slice(2))).toEqual(['evt-0', 'evt-1']);
    expect(outbox.peek(1)[0]!.attempts).toBe(1);
  });

  it('after a refused publish, re-sends from that alert once the others have settled', async () => {
    for (let i = 0; i < 4; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent, errors } = drainWith(10);
    drain.attach(publish);
    sent[0]!.done(null);
    sent[1]!.done(new Error('Publish error: Not authorized'));
    expect(drain.lastError).toMatch(/Not authorized/);
    sent[2]!.done(null);
    expect(sent).toHaveLength(4);
    sent[3]!.done(null);
    expect(errors).toEqual([sent[1]!.entry.seq]);
    expect(outbox.depth()).toBe(3);
    await waitFor(() => sent.length === 7);
    expect(ids(sent.slice(4))).toEqual(['evt-1', 'evt-2', 'evt-3']);
    for (const s of sent.slice(4)) s.done(null);
    await nextTurn();
    expect(outbox.depth()).toBe(0);
    expect(drain.lastError).toBeUndefined();
  });

  it('idle() waits for the publishes in flight; close() stops new ones', async () => {
    for (let i = 0; i < 3; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent } = drainWith(2);
    drain.attach(publish);
    drain.close();
    let idle = false;
    void drain.idle().then(() => {
      idle = true;
    });
    sent[0]!.done(null);
    await Promise.resolve();
    expect(idle).toBe(false);
    sent[1]!.done(null);
    await waitFor(() => idle);
    expect(sent).toHaveLength(2);
    expect(outbox.depth()).toBe(1);
  });

  it('close() deletes the PUBACKed prefix at once and leaves no timer; later PUBACKs delete without one', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
    for (let i = 0; i < 4; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent, delivered, errors } = drainWith(10);
    drain.attach(publish);
    sent[0]!.done(null);
    sent[1]!.done(null);
    expect(vi.getTimerCount()).toBe(1); // the delete due at the end of this turn
    drain.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(delivered).toEqual([sent[0]!.entry.seq, sent[1]!.entry.seq]);
    expect(outbox.depth()).toBe(2);
    sent[2]!.done(null);
    expect(outbox.depth()).toBe(1);
    sent[3]!.done(new Error('Publish error: Quota exceeded')); // a rewind after close schedules no retry
    expect(errors).toEqual([sent[3]!.entry.seq]);
    expect(vi.getTimerCount()).toBe(0);
    await drain.idle();
    expect(sent).toHaveLength(4);
    expect(outbox.peek(10).map((e) => e.alert.eventId)).toEqual(['evt-3']);
  });
  it('oldestUnacked(): the oldest alert without a PUBACK, in flight or not yet sent, and how many there are', async () => {
    let now = 1_000;
    const box = SqliteAlertOutbox.open(join(dir, 'ages.db'), { now: () => now });
    try {
      const { drain, publish, sent } = drainWith(2, box);
      expect(drain.oldestUnacked()).toBeUndefined();
      for (let i = 0; i < 4; i++) {
        box.enqueue(makeAlert(i));
        now += 100;
      }
      // Not connected: the oldest waiting alert.
      expect(drain.oldestUnacked()).toEqual({ enqueuedAt: 1_000, count: 4 });
      drain.attach(publish);
      expect(sent).toHaveLength(2);
      // A later PUBACK first: the earlier alert is still the oldest unacknowledged one.
      sent[1]!.done(null);
      expect(drain.oldestUnacked()).toEqual({ enqueuedAt: 1_000, count: 4 });
      sent[0]!.done(null);
      // Both acknowledged (their delete is due at the end of this turn): they no longer count.
      expect(drain.oldestUnacked()).toEqual({ enqueuedAt: 1_200, count: 2 });
      await nextTurn();
      expect(drain.oldestUnacked()).toEqual({ enqueuedAt: 1_200, count: 2 });
      for (const s of sent.slice(2)) s.done(null);
      await nextTurn();
      expect(box.depth()).toBe(0);
      expect(drain.oldestUnacked()).toBeUndefined();
    } finally {
      box.close();
    }
  });
});
