import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ActiveOccurrence, RuleSnapshot } from './alert-rule.js';

/**
 * Version 0.1's store of a model's active alert: read once after an upgrade (RuleSet.restore); the state now lives
 * in the buffer, committed with the outbox event (alert_rule_state).
 *
 * Keeps a model's active alert across restarts (<stateDir>/runtime/alerts/<model>.json): after a restart the clear
 * still carries the alertId of its raise, and a condition that persists through the restart is not raised twice.
 * Written on every raise and clear only (rare), atomically (temp file + rename).
 */
export class AlertStateStore {
  readonly #file: string;

  constructor(stateDir: string, modelName: string) {
    this.#file = join(stateDir, 'runtime', 'alerts', `${modelName}.json`);
  }

  get file(): string {
    return this.#file;
  }

  /** The saved state, or undefined when there is none or it cannot be read (then the model starts clear). */
  load(): RuleSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.#file, 'utf8');
    } catch {
      return undefined;
    }
    let data: { active?: ActiveOccurrence | null; cooldownUntil?: number | null };
    try {
      data = JSON.parse(text) as typeof data;
    } catch {
      return undefined;
    }
    const active = data.active && typeof data.active.alertId === 'string' && Number.isFinite(data.active.raisedAt) ? data.active : undefined;
    return {
      active,
      streak: 0,
      streakSince: undefined,
      cooldownUntil: typeof data.cooldownUntil === 'number' ? data.cooldownUntil : Number.NEGATIVE_INFINITY,
      lastEventTs: active ? active.raisedAt : Number.NEGATIVE_INFINITY,
    };
  }

  save(snapshot: RuleSnapshot): void {
    mkdirSync(join(this.#file, '..'), { recursive: true });
    const tmp = `${this.#file}.tmp`;
    const cooldownUntil = Number.isFinite(snapshot.cooldownUntil) ? snapshot.cooldownUntil : null;
    writeFileSync(tmp, `${JSON.stringify({ active: snapshot.active ?? null, cooldownUntil })}\n`);
    renameSync(tmp, this.#file);
  }
}
