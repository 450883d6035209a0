import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AlertEvent, AlertOutbox } from '../core/alert.js';
import { monotonicMs, wallClockMs } from '../core/source-clock.js';

/** Persisted state of an availability alert. */
interface StoredAvailability {
  active: { alertId: string; raisedAt: number; reason: string } | null;
}

export interface AvailabilityOptions {
  /** alert_rule_state key, e.g. `<model>/model_unavailable`. */
  key: string;
  afterMs: number;
  enabled: boolean;
  outbox: AlertOutbox;
  log: Logger;
  /** Builds the payload of a raise or clear. */
  build: (e: { state: 'raised' | 'cleared'; alertId: string; ts: number; raisedAt: number; reason: string }) => AlertEvent;
  now?: () => number;
  mono?: () => number;
}

/**
 * "Silence is not health": tracks when a model (or a source) last did its job and raises an availability alert
 * through the same outbox when it has not for `afterMs` (monotonic time), clearing it when it works again. The
 * state commits with the event, like any rule, so a restart neither raises it twice nor loses its clear. Event
 * times are the gateway's clock: something that cannot work has no source time to give.
 */
export class AvailabilityAlert {
  #okAt: number;
  #reason = '';
  #active: StoredAvailability['active'] = null;
  #refused = false;
  readonly #now: () => number;
  readonly #mono: () => number;

  constructor(private readonly o: AvailabilityOptions) {
    this.#now = o.now ?? wallClockMs;
    this.#mono = o.mono ?? monotonicMs;
    this.#okAt = this.#mono();
    try {
      const text = o.outbox.loadRuleState(o.key);
      const stored = text ? (JSON.parse(text) as StoredAvailability) : undefined;
      if (stored?.active && typeof stored.active.alertId === 'string') this.#active = stored.active;
    } catch (err) {
      o.log.warn({ err, key: o.key }, 'cannot read the availability alert state');
    }
  }

  /** The standing alert, if raised. */
  get active(): { alertId: string; raisedAt: number; reason: string } | null {
    return this.#active;
  }

  /** Milliseconds since the subject last worked (monotonic). */
  get unavailableForMs(): number {
    return this.#mono() - this.#okAt;
  }

  /** The outbox refused the last raise or clear (retried at the next check). */
  get refused(): boolean {
    return this.#refused;
  }

  /** The subject did its job now: clears a standing alert. */
  ok(reason = 'works again'): void {
    this.#okAt = this.#mono();
    if (this.#active) this.#commit('cleared', reason);
  }

  /** The subject cannot work (why, in words); raises once it has lasted `afterMs`. Call it on every check. */
  failing(reason: string): void {
    this.#reason = reason;
    if (!this.o.enabled || this.#active) return;
    if (this.#mono() - this.#okAt >= this.o.afterMs) this.#commit('raised', reason);
  }

  /** The current reason the subject is not working ('' when it is). */
  get reason(): string {
    return this.#reason;
  }

  #commit(state: 'raised' | 'cleared', reason: string): void {
    const ts = this.#now();
    const alertId = state === 'raised' ? randomUUID() : this.#active!.alertId;
    const raisedAt = state === 'raised' ? ts : this.#active!.raisedAt;
    const next: StoredAvailability = { active: state === 'raised' ? { alertId, raisedAt, reason } : null };
    try {
      this.o.outbox.enqueue(this.o.build({ state, alertId, ts: Math.max(ts, raisedAt), raisedAt, reason }), { key: this.o.key, state: JSON.stringify(next) });
    } catch (err) {
      if (!this.#refused) this.o.log.error({ err, key: this.o.key, state }, 'the outbox refused the availability alert; retried at the next check');
      this.#refused = true;
      return;
    }
    this.#refused = false;
    this.#active = next.active;
    if (state === 'raised') this.o.log.error({ alertId, reason }, `${this.o.key}: raised (${reason})`);
    else this.o.log.info({ alertId }, `${this.o.key}: cleared`);
  }
}
