import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AlertEvent, AlertOutbox } from '../core/alert.js';
import { AlertRule, type RuleSnapshot, type RuleTransition } from './alert-rule.js';
import { AlertStateStore } from './alert-state-store.js';
import { monotonicMs } from '../core/source-clock.js';
import type { NamedRule } from './config.js';

/** Debounce state that changed without an event is saved at most this often (it only restarts a debounce if lost). */
const LAZY_SAVE_MS = 5_000;

/** One rule of a model, with its durable state. */
export interface RuleEntry {
  cfg: NamedRule;
  /** `<model>/<rule>`: the row of alert_rule_state. */
  key: string;
  rule: AlertRule;
  /** The outbox refused this rule's last transition: it is retried at the next window (a new event). */
  refused?: { state: 'raised' | 'cleared'; alertId: string; message: string; since: number; attempts: number; event: AlertEvent } | undefined;
}

/** What the rule set needs to turn a transition into a payload. */
export type EventBuilder = (entry: RuleEntry, transition: RuleTransition) => AlertEvent;

/** The persisted form of a rule's state: the snapshot plus the end of the last window it evaluated. */
interface StoredRuleState extends Omit<RuleSnapshot, 'cooldownUntil' | 'lastEventTs'> {
  cooldownUntil: number | null;
  lastEventTs: number | null;
  /** Source time of the last window this rule evaluated. */
  lastWindowTs: number | null;
}

/**
 * The alert rules of one model and their state, crash-consistent: a raise or clear is committed to the outbox in
 * the same transaction as the rule state it makes true (AlertOutbox.enqueue(event, {key, state})). After any crash
 * the stored state is what was published or queued: no occurrence is raised twice or cleared twice. Debounce
 * progress without an event is saved lazily (losing it only restarts a debounce).
 */
export class RuleSet {
  readonly entries: RuleEntry[];
  #dirty = false;
  #savedAt = Number.NEGATIVE_INFINITY;
  #lastWindowTs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly model: string,
    rules: readonly NamedRule[],
    private readonly outbox: AlertOutbox,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    this.entries = rules.map((cfg) => ({ cfg, key: `${model}/${cfg.name}`, rule: new AlertRule(cfg, randomUUID) }));
  }

  /** Source time of the last window any rule evaluated before the restart (windows up to it are not evaluated again). */
  get lastWindowTs(): number {
    return this.#lastWindowTs;
  }

  /** Loads every rule's state from the buffer (or, once, from the JSON file of an older version). */
  restore(stateDir: string): void {
    for (const entry of this.entries) {
      let text: string | undefined;
      try {
        text = this.outbox.loadRuleState(entry.key);
      } catch (err) {
        this.log.error({ err, rule: entry.key }, 'cannot read the alert rule state; the rule starts clear');
      }
      if (text !== undefined) {
        const stored = parseStored(text);
        if (stored) {
          entry.rule.restore(stored.snapshot);
          if (stored.lastWindowTs > this.#lastWindowTs) this.#lastWindowTs = stored.lastWindowTs;
        }
      } else if (entry.cfg.name === 'alert' || this.entries.length === 1) {
        // Version 0.1 kept the one rule's state in <stateDir>/runtime/alerts/<model>.json.
        const legacy = new AlertStateStore(stateDir, this.model).load();
        if (legacy) entry.rule.restore(legacy);
      }
      const active = entry.rule.active;
      if (active) this.log.info({ rule: entry.key, alertId: active.alertId, raisedAt: active.raisedAt }, 'alert still active from before the restart');
    }
  }

  /** A clock step: every rule forgets its debounce and cooldown (measured on the old timeline). */
  resetTimers(): void {
    for (const entry of this.entries) entry.rule.resetTimers();
    this.#dirty = true;
  }

  /**
   * Feeds one value to one rule. A transition is committed with the rule's new state; when the outbox refuses it,
   * the rule is rolled back (the next window tries again) and undefined is returned.
   */
  evaluate(entry: RuleEntry, value: number, windowTs: number, build: EventBuilder): { transition: RuleTransition; event: AlertEvent } | undefined {
    if (windowTs > this.#lastWindowTs) {
      this.#lastWindowTs = windowTs;
      // Saved lazily too: a restart resumes after the last window evaluated, not only after the last event.
      this.#dirty = true;
    }
    const before = entry.rule.snapshot();
    const transition = entry.rule.evaluate(value, windowTs);
    if (!transition) {
      if (entry.refused) {
        this.log.warn({ rule: entry.key, alertId: entry.refused.alertId, state: entry.refused.state }, 'the alert the outbox refused no longer applies: it was never delivered');
        try {
          this.outbox.reportLost?.(entry.refused.event);
        } catch (err) {
          this.log.debug({ err }, 'lost alert not counted');
        }
      }
      entry.refused = undefined;
      if (snapshotChanged(before, entry.rule.snapshot())) this.#dirty = true;
      return undefined;
    }
    const event = build(entry, transition);
    try {
      this.outbox.enqueue(event, { key: entry.key, state: this.#serialise(entry) });
    } catch (err) {
      entry.rule.restore(before);
      const message = (err as Error).message;
      if (entry.refused?.state === event.state) {
        // A retried raise carries a new alertId (the refused occurrence never existed for subscribers).
        Object.assign(entry.refused, { alertId: event.alertId, message, attempts: entry.refused.attempts + 1, event });
      } else {
        this.log.error({ err, rule: entry.key, alertId: event.alertId, state: event.state }, 'the outbox refused the alert; it is retried at the next window');
        entry.refused = { state: event.state, alertId: event.alertId, message, since: this.now(), attempts: 1, event };
      }
      return undefined;
    }
    if (entry.refused) this.log.info({ rule: entry.key, alertId: event.alertId, attempts: entry.refused.attempts }, 'the outbox stored the alert it had refused');
    entry.refused = undefined;
    return { transition, event };
  }

  /** Saves debounce progress that changed without an event, at most every few seconds (or now with `force`). */
  saveLazily(force = false): void {
    if (!this.#dirty) return;
    // Monotonic: a wall clock set back an hour must not stop the saving for an hour.
    const now = monotonicMs();
    if (!force && now - this.#savedAt < LAZY_SAVE_MS) return;
    this.#savedAt = now;
    let ok = true;
    for (const entry of this.entries) {
      try {
        ok = this.outbox.saveRuleState({ key: entry.key, state: this.#serialise(entry) }) && ok;
      } catch {
        ok = false;
      }
    }
    if (ok) this.#dirty = false;
  }

  #serialise(entry: RuleEntry): string {
    const s = entry.rule.snapshot();
    const stored: StoredRuleState = {
      active: s.active, streak: s.streak, streakSince: s.streakSince,
      cooldownUntil: Number.isFinite(s.cooldownUntil) ? s.cooldownUntil : null,
      lastEventTs: Number.isFinite(s.lastEventTs) ? s.lastEventTs : null,
      lastWindowTs: Number.isFinite(this.#lastWindowTs) ? this.#lastWindowTs : null,
    };
    return JSON.stringify(stored);
  }
}

function parseStored(text: string): { snapshot: RuleSnapshot; lastWindowTs: number } | undefined {
  let data: Partial<StoredRuleState>;
  try {
    data = JSON.parse(text) as Partial<StoredRuleState>;
  } catch {
    return undefined;
  }
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const active = data.active && typeof data.active.alertId === 'string' && Number.isFinite(data.active.raisedAt) ? data.active : undefined;
  return {
    snapshot: {
      active,
      streak: Number.isInteger(data.streak) && data.streak! >= 0 ? data.streak! : 0,
      streakSince: num(data.streakSince),
      cooldownUntil: num(data.cooldownUntil) ?? Number.NEGATIVE_INFINITY,
      lastEventTs: num(data.lastEventTs) ?? Number.NEGATIVE_INFINITY,
    },
    lastWindowTs: num(data.lastWindowTs) ?? Number.NEGATIVE_INFINITY,
  };
}

function snapshotChanged(a: RuleSnapshot, b: RuleSnapshot): boolean {
  return a.streak !== b.streak || a.streakSince !== b.streakSince || a.cooldownUntil !== b.cooldownUntil;
}
