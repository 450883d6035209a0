import type { AlertOutbox, OutboxEntry } from '../../core/alert.js';
import { Backoff } from '../../core/backoff.js';

/** Publishes one alert; calls `done` once on PUBACK (no error) or failure. */
export type PublishFn = (entry: OutboxEntry, done: (err?: Error | null) => void) => void;

interface InFlight {
  seq: number;
  enqueuedAt: number;
  state: 'pending' | 'acked' | 'failed';
}

export interface AlertDrainOptions {
  maxInFlight: number;
  /** An alert left the outbox after its PUBACK. */
  onDelivered(seq: number, enqueuedAt: number): void;
  /** A publish failed (the broker refused it, or it could not be sent); it will be retried. */
  onPublishError(err: Error, seq: number, retryInMs: number): void;
  /** The outbox itself failed (cannot read or ack); the drain retries after a pause. */
  onOutboxError(err: unknown): void;
  /** Backoff after a refused publish before the backlog is re-sent; defaults 1 s .. 30 s. */
  retry?: { initialMs: number; maxMs: number };
}

/**
 * Moves alerts from the outbox to the broker in `seq` order with a bounded window of QoS 1 publishes in flight
 * (mqtt.js hangs beyond 65,535 unacknowledged packet ids; ~100 in flight is already the fastest on a LAN).
 *
 * An alert leaves the outbox only on its PUBACK, and only as part of the acknowledged prefix: if PUBACKs came
 * back out of order, a later alert is not deleted before an earlier one. So after a crash or a lost connection the
 * outbox still holds every alert from the oldest unacknowledged one on, and re-sending from there keeps the
 * first delivery of every alert in order (at-least-once; duplicates carry the same eventId).
 *
 * Deleting is batched: a PUBACK only marks its record acked, and once per event-loop turn (setImmediate) the
 * contiguous acked prefix is deleted with one `ackThrough` commit; a commit costs far more than the delete, and PUBACKs arrive in bursts. `onDelivered` is called for an alert only
 * once its delete has committed. A PUBACKed alert waiting for its turn no longer counts against the window. Before
 * the window restarts (rewind, reconnect) and on close, the prefix is deleted at once so delivered alerts are not
 * sent again needlessly; after close, each PUBACK deletes at once (no timer outlives close). A delete that fails
 * (disk full) leaves its alerts in the outbox to be sent again after a rewind.
 *
 * While disconnected nothing is published (there is no publish function). On every (re)connect the window restarts
 * from the oldest alert in the outbox.
 */
export class AlertDrain {
  readonly #outbox: AlertOutbox;
  readonly #options: AlertDrainOptions;
  /**
   * Oldest first; `#head` is the index of the oldest still in the outbox (an array with a moving head is O(1) to
   * shift). `[#head, #ackedEnd)` is the acked prefix waiting to be deleted; the record at `#ackedEnd`, if any, is
   * pending or failed.
   */
  #inFlight: InFlight[] = [];
  #head = 0;
  #ackedEnd = 0;
  /** Records in `#inFlight` still awaiting their PUBACK. */
  #pending = 0;
  /** Highest seq dispatched on the current connection. */
  #cursor = 0;
  /** Highest seq ever dispatched by this drain: a seq at or below it is a re-send. */
  #highestSent = 0;
  #publish: PublishFn | undefined;
  #generation = 0;
  #pumping = false;
  #closed = false;
  /** A publish failed: dispatch nothing until every publish in flight has settled, then rewind. */
  #rewindPending = false;
  /** Delay chosen when the publish that caused the pending rewind failed. */
  #rewindDelay: number | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Set while a delete of the acked prefix is due at the end of this event-loop turn. */
  #flushTimer: NodeJS.Immediate | undefined;
  readonly #retry: Backoff;
  #idleWaiters: Array<() => void> = [];
  #lastError: string | undefined;

  constructor(outbox: AlertOutbox, options: AlertDrainOptions) {
    this.#outbox = outbox;
    this.#options = options;
    this.#retry = new Backoff({ initialMs: options.retry?.initialMs ?? 1000, maxMs: options.retry?.maxMs ?? 30_000 });
  }

  /** The connection is up: start (again) from the oldest alert in the outbox. */
  attach(publish: PublishFn): void {
    this.#reset();
    this.#publish = publish;
    this.pump();
  }

  /** The connection is gone: forget what was in flight (it is still in the outbox) and publish nothing. */
  detach(): void {
    this.#reset();
    this.#publish = undefined;
  }

  /**
   * Dispatch nothing more (shutdown); publishes in flight still complete. The acked prefix is deleted now, and from
   * here on each PUBACK deletes its alerts at once, so no timer is left behind.
   */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#flush();
    this.#notifyIdle();
  }

  /** Resolves when no publish is in flight and no PUBACKed alert is still waiting to be deleted. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Publishes awaiting PUBACK. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * The oldest alert the broker has not acknowledged yet — in flight, waiting for room in the window, or waiting for
   * a connection — and how many such alerts there are; undefined when there are none. An alert PUBACKed but not yet
   * deleted (its delete is due at the end of this event-loop turn) counts as acknowledged. Reads the outbox only when
   * nothing unacknowledged is in flight. Throws when the outbox cannot be read.
   */
  oldestUnacked(): { enqueuedAt: number; count: number } | undefined {
    const ackedWaiting = this.#ackedEnd - this.#head;
    const count = this.#outbox.depth() - ackedWaiting;
    if (count <= 0) return undefined;
    // In seq order the record at #ackedEnd is the first one not acknowledged (pending, or failed and to be re-sent).
    const tracked = this.#inFlight[this.#ackedEnd];
    if (tracked) return { enqueuedAt: tracked.enqueuedAt, count };
    // Every tracked alert is acknowledged (or none is tracked): the oldest unacknowledged one is the next to send.
    const next = this.#outbox.peekAfter(this.#cursor, 1)[0];
    return next ? { enqueuedAt: next.enqueuedAt, count } : undefined;
  }

  /** The last publish error since the last successful delivery, for /healthz. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Fills the window from the outbox. Cheap to call often (after an enqueue, after a PUBACK). */
  pump(): void {
    if (this.#pumping || this.#closed || this.#rewindPending || !this.#publish) return;
    this.#pumping = true;
    try {
      const max = this.#options.maxInFlight;
      // Refill in batches of a quarter window: one outbox read per batch, not one per PUBACK.
      const batch = Math.max(1, Math.floor(max / 4));
      for (;;) {
        // Acked alerts waiting for their delete are done with the broker: only the rest fill the window.
        const inWindow = this.#inFlight.length - this.#ackedEnd;
        const free = max - inWindow;
        if (free <= 0 || (free < batch && inWindow > 0)) break;
        const entries = this.#read(free);
        if (entries.length === 0) break;
        for (const entry of entries) {
          if (!this.#publish || this.#rewindPending) break;
          this.#dispatch(entry);
        }
      }
    } catch (err) {
      this.#options.onOutboxError(err);
      this.#scheduleRetry(this.#retry.next());
    } finally {
      this.#pumping = false;
    }
  }

  #read(limit: number): OutboxEntry[] {
    return this.#outbox.peekAfter(this.#cursor, limit);
  }

  #dispatch(entry: OutboxEntry): void {
    const record: InFlight = { seq: entry.seq, enqueuedAt: entry.enqueuedAt, state: 'pending' };
    this.#inFlight.push(record);
    this.#pending++;
    this.#cursor = entry.seq;
    if (entry.seq <= this.#highestSent) this.#outbox.recordAttempt(entry.seq);
    else this.#highestSent = entry.seq;
    const generation = this.#generation;
    let settled = false;
    this.#publish!(entry, (err) => {
      if (settled || generation !== this.#generation) return;
      settled = true;
      this.#pending--;
      if (err) this.#failed(record, err);
      else this.#acked(record);
    });
  }

  #acked(record: InFlight): void {
    record.state = 'acked';
    this.#retry.reset();
    this.#lastError = undefined;
    while (this.#ackedEnd < this.#inFlight.length && this.#inFlight[this.#ackedEnd]!.state === 'acked') this.#ackedEnd++;
    if (this.#closed) this.#flush();
    else this.#scheduleFlush();
    this.#afterSettle();
  }

  /** Deletes the acked prefix at the end of this event-loop turn, together with the PUBACKs still to come in it. */
  #scheduleFlush(): void {
    if (this.#flushTimer || this.#ackedEnd === this.#head) return;
    this.#flushTimer = setImmediate(() => {
      this.#flushTimer = undefined;
      this.#flush();
      this.#afterSettle();
    });
  }

  /**
   * Deletes the acked prefix from the outbox in one commit, then reports each alert delivered. If the outbox cannot
   * delete (a full disk), the alerts stay, marked failed: they block the prefix and are sent again after a rewind
   * (a duplicate, not a loss).
   */
  #flush(): void {
    clearImmediate(this.#flushTimer);
    this.#flushTimer = undefined;
    const from = this.#head;
    const end = this.#ackedEnd;
    if (from === end) return;
    let deleted = from;
    try {
      this.#outbox.ackThrough(this.#inFlight[end - 1]!.seq);
      deleted = end;
    } catch (err) {
      for (let i = deleted; i < end; i++) this.#inFlight[i]!.state = 'failed';
      this.#ackedEnd = deleted;
      this.#rewindPending = true;
      this.#options.onOutboxError(err);
    }
    this.#head = deleted;
    for (let i = from; i < deleted; i++) {
      const done = this.#inFlight[i]!;
      try {
        this.#options.onDelivered(done.seq, done.enqueuedAt);
      } catch (err) {
        // An observer (metrics) must not turn a delivered alert into an uncaught exception in this timer callback.
        this.#options.onOutboxError(err);
      }
    }
    this.#compact();
  }

  #failed(record: InFlight, err: Error): void {
    record.state = 'failed';
    this.#lastError = err.message;
    this.#rewindPending = true;
    const delay = this.#retry.next();
    this.#rewindDelay ??= delay;
    this.#options.onPublishError(err, record.seq, delay);
    this.#afterSettle();
  }

  #afterSettle(): void {
    if (!this.#rewindPending) {
      this.#notifyIdle();
      this.pump();
      return;
    }
    if (this.pending === 0) {
      // Every publish of this round has settled: start again from the oldest alert still in the outbox, after a pause.
      this.#restartWindow();
      const delay = this.#rewindDelay ?? this.#retry.next();
      this.#rewindDelay = undefined;
      this.#scheduleRetry(delay);
    }
    this.#notifyIdle();
  }

  #scheduleRetry(delay: number): void {
    clearTimeout(this.#retryTimer);
    if (this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.pump();
    }, delay);
  }

  #reset(): void {
    this.#restartWindow();
    this.#rewindDelay = undefined;
    clearTimeout(this.#retryTimer);
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Deletes what was PUBACKed (so it is not sent again), then forgets the window: the next read is from the oldest. */
  #restartWindow(): void {
    this.#flush();
    this.#generation++;
    this.#inFlight = [];
    this.#head = 0;
    this.#ackedEnd = 0;
    this.#pending = 0;
    this.#cursor = 0;
    this.#rewindPending = false;
  }

  #isIdle(): boolean {
    return this.#pending === 0 && this.#flushTimer === undefined;
  }

  #notifyIdle(): void {
    if (!this.#isIdle()) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Drops the acknowledged prefix from the array now and then, so it does not grow without bound. */
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#inFlight.length) {
      this.#inFlight = this.#inFlight.slice(this.#head);
      this.#ackedEnd -= this.#head;
      this.#head = 0;
    }
  }
}
