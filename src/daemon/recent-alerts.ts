import type { AlertEvent, AlertOutbox } from '../core/alert.js';

/** Alert events kept for the status page: enough for a shift's raises and clears on a busy line. */
const DEFAULT_CAPACITY = 500;
/** Entries read per enqueue: one enqueue commits one event, the rest is slack for a burst. */
const PEEK_BATCH = 100;

/** One alert event as the status page shows it, with when this gateway stored it. */
export interface RecentAlertEvent {
  /** Gateway wall-clock time the event was committed to the outbox, epoch ms. */
  enqueuedAt: number;
  alert: AlertEvent;
}

/**
 * An in-memory ring of the alert events this process raised and cleared, newest last. The outbox holds only what
 * is not delivered yet (a delivered event leaves it at PUBACK), so the page's "recent raises and clears" and the
 * inputs of an active alert come from here. It reads each event from the outbox in the synchronous enqueue
 * callback, before any PUBACK can remove it. Lost on restart, by design: the durable record is the broker's.
 */
export class RecentAlerts {
  readonly #capacity: number;
  #events: RecentAlertEvent[] = [];
  #unfollow: (() => void) | undefined;
  #lastSeq = 0;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.#capacity = capacity;
  }

  /**
   * Follows an outbox (the buffer's; a reload that restarts the buffer follows the new one): events waiting in it
   * now are taken in too, so alerts queued before a restart and not yet delivered are shown.
   */
  follow(outbox: Pick<AlertOutbox, 'onEnqueue' | 'peekAfter'>): void {
    this.#unfollow?.();
    this.#lastSeq = 0;
    const read = (): void => {
      for (;;) {
        const entries = outbox.peekAfter(this.#lastSeq, PEEK_BATCH);
        for (const e of entries) {
          this.#lastSeq = e.seq;
          this.#push({ enqueuedAt: e.enqueuedAt, alert: e.alert });
        }
        if (entries.length < PEEK_BATCH) return;
      }
    };
    // Set before the first read: a throw there (outbox closed) must not leave the previous subscription behind.
    this.#unfollow = outbox.onEnqueue(read);
    read();
  }

  /** Stops following (the buffer stops). The events seen so far are kept. */
  unfollow(): void {
    this.#unfollow?.();
    this.#unfollow = undefined;
  }

  /** The events seen, oldest first; `sinceEnqueuedAt` keeps only those stored at or after it. */
  list(sinceEnqueuedAt = Number.NEGATIVE_INFINITY): RecentAlertEvent[] {
    return this.#events.filter((e) => e.enqueuedAt >= sinceEnqueuedAt);
  }

  #push(event: RecentAlertEvent): void {
    // The same event can come again when a restarted buffer's outbox still holds it.
    if (this.#events.some((e) => e.alert.eventId === event.alert.eventId)) return;
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.splice(0, this.#events.length - this.#capacity);
  }
}
