/**
 * Alerts: what the runtime raises and clears, what the outbox keeps durably and the MQTT sink delivers.
 * The JSON shape of AlertEvent is the public payload; it is documented in docs/alert-payload.md.
 */

export type AlertState = 'raised' | 'cleared';
export type Severity = 'critical' | 'major' | 'minor' | 'warning' | 'info';

export interface AlertEvent {
  /** Payload schema version, bumped on incompatible change. */
  schema: 1;
  /** Unique id of this event (raise and clear have different event ids); subscribers de-duplicate on it. */
  eventId: string;
  /** Stable id of the alert occurrence: the raise and its clear share it. */
  alertId: string;
  state: AlertState;
  /** e.g. `equipment_fault`, `quality_defect`, `degradation`. */
  kind: string;
  severity: Severity;
  gateway: string;
  /** Asset or line the model watches, from the config. */
  asset?: string;
  /** The model whose output caused it; absent only on `source_unavailable` (no model involved). */
  model?: { name: string; version: string; hash: string };
  /** For `source_unavailable`: the source (`opcua/plc1`, `mqtt-source/devices`). */
  source?: string;
  /** Execution provider that really ran the inference (`cpu`, `cuda`, `tensorrt`). */
  provider: string;
  output: { name: string; value: number; label?: string };
  rule: { name?: string; raiseAbove?: number; clearBelow?: number; raiseBelow?: number; clearAbove?: number; forSamples?: number; forMs?: number };
  /** On `model_unavailable`: the alertIds of the model's alerts that stand unevaluated meanwhile. */
  unevaluatedAlerts?: string[];
  /** Event time, epoch ms (timestamp of the newest sample the triggering inference used). */
  ts: number;
  /** When this occurrence was raised, epoch ms. */
  raisedAt: number;
  clearedAt?: number;
  /** Recent values of the contributing tags: tag -> [[ts, value], ...], oldest first. */
  inputs: Record<string, Array<[number, number | null]>>;
  /** One human sentence. */
  message: string;
}

/** One entry in the durable alert outbox. `seq` orders delivery. */
export interface OutboxEntry {
  seq: number;
  alert: AlertEvent;
  enqueuedAt: number;
  attempts: number;
}

/**
 * The state of one alert rule, written in the same transaction as the outbox event it causes: after any crash the
 * stored rule state is exactly what was published or queued (no occurrence raised twice, none cleared twice).
 */
export interface RuleStateWrite {
  /** `<model>/<rule>`: one row per rule. */
  key: string;
  /** The rule's snapshot as JSON (the runtime owns the format). */
  state: string;
}

/**
 * The durable alert outbox as seen by producers (the runtime) and the consumer (the MQTT sink).
 * `enqueue` returns only after the alert is committed to disk.
 */
export interface AlertOutbox {
  /**
   * Commits the alert durably, and with it (same transaction) the new state of the rule that caused it. Throws only
   * if it cannot be stored; then neither the alert nor the rule state was written, and the caller logs and counts that.
   */
  enqueue(alert: AlertEvent, rule?: RuleStateWrite): OutboxEntry;
  /** The rule state stored last for `key` (by enqueue or saveRuleState), or undefined. */
  loadRuleState(key: string): string | undefined;
  /**
   * Stores rule state that changed without an event (debounce streaks, timers after a clock step). Not fsynced:
   * a crash may lose it, which only restarts a debounce. Best effort: returns false when it could not be written.
   */
  saveRuleState(rule: RuleStateWrite): boolean;
  /** Oldest entries first, without removing them. */
  peek(limit: number): OutboxEntry[];
  /**
   * Entries with `seq` greater than `afterSeq`, oldest first, without removing them: lets the sink read on past the
   * alerts it has in flight instead of re-reading them.
   */
  peekAfter(afterSeq: number, limit: number): OutboxEntry[];
  /** Removes a delivered entry (called on PUBACK). */
  ack(seq: number): void;
  /**
   * Removes every entry with a seq up to and including `seq` in one commit: the sink only ever acknowledges a
   * contiguous prefix of the queue, and one commit per burst of PUBACKs costs far less than one per alert. Throws, and
   * keeps the entries (they are delivered again: a duplicate, not a loss), when the delete cannot be committed.
   */
  ackThrough(seq: number): void;
  /**
   * Counts one more delivery attempt of `seq` (a re-send after a lost connection or a refused publish), shown as
   * `attempts` by peek. Informational and best effort: never throws for a write that failed.
   */
  recordAttempt(seq: number): void;
  /**
   * The producer gave up an alert the outbox refused (the condition behind it is gone before the disk took it):
   * counted once as lost and logged with its alertId. Optional: an outbox without a loss counter need not have it.
   */
  reportLost?(alert: AlertEvent, reason?: string): void;
  /** Number of alerts waiting. */
  depth(): number;
  /** Called (synchronously) after each enqueue; returns an unsubscribe function. */
  onEnqueue(listener: () => void): () => void;
}
