import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import type { OutboxEntry } from '../../../src/core/alert.js';
import { AlertDrain, type PublishFn } from '../../../src/connectors/mqtt/alert-drain.js';
import { makeAlert } from '../../fixtures/mqtt/alerts.js';

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
  outbox.close();
  rmSync(dir, { recursive: true, force: true });
});

function drainWith(maxInFlight: number) {
  const sent: Sent[] = [];
  const delivered: number[] = [];
  const errors: number[] = [];
  const drain = new AlertDrain(outbox, {
    maxInFlight,
    onDelivered: (seq) => delivered.push(seq),
    onPublishError: (_err, seq) => errors.push(seq),
    onOutboxError: (err) => {
      throw err;
    },
    retry: { initialMs: 5, maxMs: 20 },
  });
  const publish: PublishFn = (entry, done) => sent.push({ entry, done });
  return { drain, publish, sent, delivered, errors };
}

const ids = (entries: Sent[]): string[] => entries.map((s) => s.entry.alert.eventId);
const waitFor = async (check: () => boolean, ms = 2000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('AlertDrain', () => {
  it('keeps at most maxInFlight publishes outstanding and delivers everything in order', () => {
    for (let i = 0; i < 25; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent, delivered } = drainWith(4);
    drain.attach(publish);
    expect(sent).toHaveLength(4);
    let answered = 0;
    while (answered < sent.length) {
      sent[answered++]!.done(null);
      expect(drain.pending).toBeLessThanOrEqual(4);
    }
    expect(ids(sent)).toEqual(Array.from({ length: 25 }, (_, i) => `evt-${i}`));
    expect(delivered).toHaveLength(25);
    expect(outbox.depth()).toBe(0);
  });

  it('deletes only the acknowledged prefix when PUBACKs come back out of order', () => {
    for (let i = 0; i < 3; i++) outbox.enqueue(makeAlert(i));
    const { drain, publish, sent, delivered } = drainWith(10);
    drain.attach(publish);
    sent[2]!.done(null);
    sent[1]!.done(null);
    expect(outbox.depth()).toBe(3);
    expect(delivered).toEqual([]);
    sent[0]!.done(null);
    expect(outbox.depth()).toBe(0);
    expect(delivered).toEqual(sent.map((s) => s.entry.seq));
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
});
