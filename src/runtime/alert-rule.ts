import type { AlertRuleConfig } from './config.js';

/**
 * The alert state machine of one model: threshold with hysteresis, debounce, cooldown. Pure and synchronous: time
 * is the sample time passed in (the newest sample the inference used), so replays and tests are deterministic.
 *
 * - Rising rule: raise when value > raiseAbove, clear when value < clearBelow (clearBelow ≤ raiseAbove).
 *   Falling rule: raise when value < raiseBelow, clear when value > clearAbove. Between the two thresholds the
 *   state holds: that gap is the hysteresis that stops a noisy value from flapping.
 * - Debounce applies to raising and to clearing alike: the condition must hold for `forSamples` consecutive
 *   evaluations AND for at least `forMs` (from the first to the latest of those evaluations). One evaluation
 *   where it does not hold starts the count again.
 * - Cooldown: after a clear, no raise before clearedAt + cooldownMs; evaluations during the cooldown still count
 *   towards the debounce, so a condition that persists raises as soon as the cooldown ends.
 * - Non-finite values are ignored: they neither count nor reset (the caller counts them as skipped).
 * - Event times are monotonic: an event never carries a time before the rule's previous event (after a source clock
 *   stepped back, a clear is stamped no earlier than its raise). `resetTimers` (on a clock step) forgets the debounce
 *   and cooldown, which were measured on the old timeline, and keeps the active occurrence.
 */

/** The occurrence an active alert belongs to; the raise and its clear share `alertId`. */
export interface ActiveOccurrence {
  alertId: string;
  raisedAt: number;
  raiseValue: number;
}

/** Everything the rule remembers: restorable after a restart so a clear keeps its raise's alertId. */
export interface RuleSnapshot {
  active: ActiveOccurrence | undefined;
  streak: number;
  streakSince: number | undefined;
  cooldownUntil: number;
  /** Time of the rule's last raise or clear (source time), or -Infinity. */
  lastEventTs: number;
}

export type RuleTransition =
  | { type: 'raise'; occurrence: ActiveOccurrence; ts: number; value: number }
  | { type: 'clear'; occurrence: ActiveOccurrence; ts: number; value: number; clearedAt: number };

export type ThresholdRule = Pick<AlertRuleConfig, 'raiseAbove' | 'clearBelow' | 'raiseBelow' | 'clearAbove' | 'forSamples' | 'forMs' | 'cooldownMs'>;

export class AlertRule {
  #state: RuleSnapshot = {
    active: undefined, streak: 0, streakSince: undefined, cooldownUntil: Number.NEGATIVE_INFINITY, lastEventTs: Number.NEGATIVE_INFINITY,
  };

  constructor(
    private readonly rule: ThresholdRule,
    private readonly newId: () => string,
  ) {
    if (this.#raiseHit(Number.NaN) === undefined) throw new Error('the alert rule has no threshold: set raiseAbove/clearBelow or raiseBelow/clearAbove');
  }

  get active(): ActiveOccurrence | undefined {
    return this.#state.active;
  }

  snapshot(): RuleSnapshot {
    return { ...this.#state };
  }

  restore(snapshot: RuleSnapshot): void {
    this.#state = { ...snapshot, lastEventTs: snapshot.lastEventTs ?? Number.NEGATIVE_INFINITY };
  }

  /** A clock step: the debounce and cooldown were measured on the old timeline. The active occurrence stays. */
  resetTimers(): void {
    this.#state.streak = 0;
    this.#state.streakSince = undefined;
    this.#state.cooldownUntil = Number.NEGATIVE_INFINITY;
  }

  /** Feeds one model output; returns the transition it caused, if any. */
  evaluate(value: number, ts: number): RuleTransition | undefined {
    if (!Number.isFinite(value)) return undefined;
    const s = this.#state;
    const hit = s.active ? this.#clearHit(value) : this.#raiseHit(value);
    if (!hit) {
      s.streak = 0;
      s.streakSince = undefined;
      return undefined;
    }
    s.streak++;
    s.streakSince ??= ts;
    const debounced = s.streak >= (this.rule.forSamples ?? 1) && ts - s.streakSince >= (this.rule.forMs ?? 0);
    if (!debounced) return undefined;
    if (s.active) {
      const occurrence = s.active;
      const at = Math.max(ts, s.lastEventTs, occurrence.raisedAt);
      s.active = undefined;
      s.streak = 0;
      s.streakSince = undefined;
      s.cooldownUntil = ts + (this.rule.cooldownMs ?? 0);
      s.lastEventTs = at;
      return { type: 'clear', occurrence, ts: at, value, clearedAt: at };
    }
    if (ts < s.cooldownUntil) return undefined;
    const at = Math.max(ts, s.lastEventTs);
    const occurrence: ActiveOccurrence = { alertId: this.newId(), raisedAt: at, raiseValue: value };
    s.active = occurrence;
    s.streak = 0;
    s.streakSince = undefined;
    s.lastEventTs = at;
    return { type: 'raise', occurrence, ts: at, value };
  }

  /** True when the value calls for a raise; undefined when the rule has no raise threshold. */
  #raiseHit(value: number): boolean | undefined {
    if (this.rule.raiseAbove !== undefined) return value > this.rule.raiseAbove;
    if (this.rule.raiseBelow !== undefined) return value < this.rule.raiseBelow;
    return undefined;
  }

  #clearHit(value: number): boolean {
    if (this.rule.raiseAbove !== undefined) return value < (this.rule.clearBelow ?? this.rule.raiseAbove);
    return value > (this.rule.clearAbove ?? this.rule.raiseBelow!);
  }
}
