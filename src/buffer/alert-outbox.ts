import type { Database, Statement } from 'better-sqlite3';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AlertEvent, AlertOutbox, OutboxEntry, RuleStateWrite } from '../core/alert.js';
import { outboxMetrics, type OutboxMetrics } from './buffer-metrics.js';
import { errorCode, isFullError, openDatabase } from './database.js';
import { migrate } from './migrations.js';

export interface AlertOutboxOptions {
  /** Alerts kept waiting at most; beyond it the oldest waiting alert is dropped (counted and logged). */
  maxAlerts: number;
  /** Bound on the JSON payload bytes kept waiting; beyond it the oldest waiting alerts are dropped. */
  maxBytes: number;
  log: Logger;
  /** Registry for the outbox metrics; none are registered without one. */
  metrics?: Registry;
  /**
   * Called when a commit fails because the disk is full. It should free room (the sample buffer deletes the
   * oldest samples, and lends the outbox its disk reserve) and return true when it did, so telemetry goes before alerts.
   */
  makeRoom?: () => boolean;
  /** Called after each committed enqueue (the sample buffer keeps the WAL within the free space). */
  afterCommit?: () => void;
  /** Clock, for tests. */
  now?: () => number;
}

const DEFAULTS = { maxAlerts: 100_000, maxBytes: 256_000_000 } as const;

/** Alerts dropped to make room on a full disk, per attempt, before the new alert is given up. */
const DISK_FULL_DROP_BATCH = 16;
/** Commits tried per enqueue on a full disk (each after making room) before the alert is given up. */
const DISK_FULL_ATTEMPTS = 8;

type Row = { seq: number; enqueued_at: number; attempts: number; payload: string };

/** Why an alert never reached the outbox or left it undelivered: the reason label of the drop counter. */
export type LostReason = 'outbox_full' | 'disk_full' | 'write_error' | 'too_large';

/** Alert events remembered as reported lost, so a second report of one is not counted twice. */
const LOST_REMEMBERED = 1024;

/**
 * The durable alert outbox in the `alert_outbox` table of the buffer database.
 *
 * - `enqueue` commits with `synchronous = FULL` (the WAL is fsynced), so an alert the runtime was told about
 *   survives a SIGKILL and a power cut. `ack` commits with `synchronous = NORMAL`: an ack lost in a power cut
 *   means the alert is delivered again, and subscribers de-duplicate on `eventId` (at-least-once).
 * - Delivery order is `seq` order; `seq` is never reused (AUTOINCREMENT).
 * - When full, the policy is: telemetry goes before alerts. The outbox has its own bounds (`maxAlerts`,
 *   `maxBytes`); samples never count against them, so a flood of samples can never push an alert out. When an
 *   enqueue hits a full disk (SQLITE_FULL), `makeRoom` is asked for room (the sample buffer checkpoints, deletes the
 *   oldest samples, and lends its disk reserve) and the commit is retried; only when that frees nothing are the
 *   oldest waiting alerts dropped to fit the new one, and only when even that fails does `enqueue` throw. When the
 *   outbox's own bound is reached, the oldest waiting alert is dropped (the newest state of the plant is worth more
 *   than the oldest).
 * - Counting: `droppedCount` and `lineguard_buffer_dropped_alerts_total{reason}` count alert events lost, each
 *   logged once with its alertId: those dropped after they were accepted, and those the producer reports with
 *   `reportLost` when it gives up one the outbox refused. A refused enqueue is not counted by itself: the runtime
 *   retries it (with a new event) on the next inference, and a retry is not a loss.
 *
 * One instance owns the table at a time: depth and size are kept in memory from the open onwards.
 * The connection it is given is used with per-statement `synchronous` changes; give it its own connection.
 */
export class SqliteAlertOutbox implements AlertOutbox {
  readonly #db: Database;
  /** True when `open()` opened the connection, so `close()` closes it. */
  #ownsDb: boolean;
  readonly #options: AlertOutboxOptions;
  readonly #metrics: OutboxMetrics | undefined;
  readonly #now: () => number;
  readonly #listeners = new Set<() => void>();
  readonly #sql: {
    insert: Statement<[string, number, number, string]>;
    oldest: Statement<[]>;
    oldestN: Statement<[number]>;
    deleteSeq: Statement<[number]>;
    deleteThrough: Statement<[number]>;
    peek: Statement<[number, number]>;
    attempt: Statement<[number]>;
    totals: Statement<[]>;
    syncFull: Statement<[]>;
    syncNormal: Statement<[]>;
    saveRule: Statement<[string, string, number]>;
    loadRule: Statement<[string]>;
  };
  #depth: number;
  #bytes: number;
  #dropped = 0;
  /** Why the last enqueue was refused, for `reportLost` without a reason; undefined after a success. */
  #lastRefusal: LostReason | undefined;
  #refusing = false;
  readonly #reportedLost = new Set<string>();
  #closed = false;

  /**
   * @param db a better-sqlite3 connection to the buffer database (the schema is migrated if needed).
   *   It stays the caller's: `close()` does not close it.
   */
  constructor(db: Database, options: AlertOutboxOptions) {
    this.#db = db;
    this.#ownsDb = false;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#metrics = options.metrics ? outboxMetrics(options.metrics) : undefined;
    migrate(db);
    this.#sql = {
      insert: db.prepare('INSERT INTO alert_outbox (event_id, enqueued_at, bytes, payload) VALUES (?, ?, ?, ?)'),
      oldest: db.prepare('SELECT seq, bytes, event_id, enqueued_at, payload FROM alert_outbox ORDER BY seq LIMIT 1'),
      oldestN: db.prepare('SELECT seq, bytes, event_id, payload FROM alert_outbox ORDER BY seq LIMIT ?'),
      deleteSeq: db.prepare('DELETE FROM alert_outbox WHERE seq = ? RETURNING bytes'),
      deleteThrough: db.prepare('DELETE FROM alert_outbox WHERE seq <= ? RETURNING bytes'),
      peek: db.prepare('SELECT seq, enqueued_at, attempts, payload FROM alert_outbox WHERE seq > ? ORDER BY seq LIMIT ?'),
      attempt: db.prepare('UPDATE alert_outbox SET attempts = attempts + 1 WHERE seq = ?'),
      totals: db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM alert_outbox'),
      syncFull: db.prepare('PRAGMA synchronous = FULL'),
      syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
      saveRule: db.prepare(
        'INSERT INTO alert_rule_state (rule_key, state, updated_at) VALUES (?, ?, ?) ' +
          'ON CONFLICT (rule_key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at',
      ),
      loadRule: db.prepare('SELECT state FROM alert_rule_state WHERE rule_key = ?').pluck(),
    };
    const totals = this.#sql.totals.get() as { n: number; bytes: number };
    this.#depth = totals.n;
    this.#bytes = totals.bytes;
    this.#updateGauges();
  }

  /**
   * Opens `file` (created if needed, WAL mode) with its own connection, which `close()` closes.
   * Defaults: 100,000 alerts, 256 MB, a silent logger.
   */
  static open(file: string, options: Partial<AlertOutboxOptions> = {}): SqliteAlertOutbox {
    const db = openDatabase(file, { synchronous: 'FULL' });
    try {
      const outbox = new SqliteAlertOutbox(db, {
        maxAlerts: options.maxAlerts ?? DEFAULTS.maxAlerts,
        maxBytes: options.maxBytes ?? DEFAULTS.maxBytes,
        log: options.log ?? pino({ level: 'silent' }),
        ...(options.metrics ? { metrics: options.metrics } : {}),
        ...(options.makeRoom ? { makeRoom: options.makeRoom } : {}),
        ...(options.afterCommit ? { afterCommit: options.afterCommit } : {}),
        ...(options.now ? { now: options.now } : {}),
      });
      outbox.#ownsDb = true;
      return outbox;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  enqueue(alert: AlertEvent, rule?: RuleStateWrite): OutboxEntry {
    this.#assertOpen();
    const payload = JSON.stringify(alert);
    const bytes = Buffer.byteLength(payload);
    if (bytes > this.#options.maxBytes) {
      throw this.#refused(
        alert, 'too_large', new RangeError(`alert ${alert.eventId} is ${bytes} bytes, more than the outbox holds (${this.#options.maxBytes})`),
      );
    }
    const enqueuedAt = this.#now();
    let seq: number | undefined;
    for (let attempt = 0; seq === undefined; attempt++) {
      try {
        seq = this.#commitInsert(alert, payload, bytes, enqueuedAt, rule);
      } catch (err) {
        if (!isFullError(err) || attempt >= DISK_FULL_ATTEMPTS) throw this.#refused(alert, isFullError(err) ? 'disk_full' : 'write_error', err);
        // Telemetry first: ask the sample buffer for room for as long as it has some; only when it has nothing
        // left to give, drop the oldest waiting alerts.
        if (this.#options.makeRoom?.()) continue;
        if (this.#dropOldest(DISK_FULL_DROP_BATCH, 'disk_full') === 0) throw this.#refused(alert, 'disk_full', err);
      }
    }
    if (this.#refusing) this.#options.log.info({ eventId: alert.eventId, alertId: alert.alertId }, 'the outbox stores alerts again');
    this.#refusing = false;
    this.#lastRefusal = undefined;
    try {
      this.#options.afterCommit?.();
    } catch (err) {
      this.#options.log.error({ err }, 'outbox after-commit hook failed');
    }
    this.#metrics?.enqueued.inc();
    this.#updateGauges();
    const entry: OutboxEntry = { seq, alert, enqueuedAt, attempts: 0 };
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch (err) {
        this.#options.log.error({ err }, 'outbox enqueue listener failed');
      }
    }
    return entry;
  }

  /**
   * The producer gave up an alert the outbox refused (its enqueue threw and it will not be tried again, e.g. the
   * condition behind it went away while the disk was full): counts it as lost and logs it once with its alertId.
   * `reason` defaults to why the last enqueue was refused. Reporting the same event again does nothing.
   */
  reportLost(alert: Pick<AlertEvent, 'eventId' | 'alertId' | 'state'>, reason?: LostReason): void {
    if (this.#reportedLost.has(alert.eventId)) return;
    this.#reportedLost.add(alert.eventId);
    if (this.#reportedLost.size > LOST_REMEMBERED) this.#reportedLost.delete(this.#reportedLost.values().next().value!);
    const why = reason ?? this.#lastRefusal ?? 'write_error';
    this.#options.log.error({ eventId: alert.eventId, alertId: alert.alertId, state: alert.state, reason: why }, 'alert lost: it could not be stored in the outbox');
    this.#countDrop(why, 1);
  }

  loadRuleState(key: string): string | undefined {
    this.#assertOpen();
    return this.#sql.loadRule.get(key) as string | undefined;
  }

  saveRuleState(rule: RuleStateWrite): boolean {
    this.#assertOpen();
    try {
      this.#sql.syncNormal.run();
      this.#sql.saveRule.run(rule.key, rule.state, this.#now());
      return true;
    } catch (err) {
      this.#options.log.debug({ err, key: rule.key, code: errorCode(err) }, 'rule state not saved');
      return false;
    }
  }

  /** Oldest entries first, without removing them. */
  peek(limit: number): OutboxEntry[] {
    return this.peekAfter(0, limit);
  }

  /** Entries with `seq` greater than `afterSeq`, oldest first: lets a sink with messages in flight read on. */
  peekAfter(afterSeq: number, limit: number): OutboxEntry[] {
    this.#assertOpen();
    const rows = this.#sql.peek.all(afterSeq, limit) as Row[];
    return rows.map((r) => ({ seq: r.seq, enqueuedAt: r.enqueued_at, attempts: r.attempts, alert: JSON.parse(r.payload) as AlertEvent }));
  }

  /**
   * Removes a delivered entry. Acking an unknown or already-acked seq does nothing. Throws (and keeps the entry,
   * which is then delivered again: a duplicate, not a loss) when the delete cannot be committed, e.g. on a full disk.
   */
  ack(seq: number): void {
    this.#removeAcked(this.#sql.deleteSeq, seq);
  }

  /**
   * Removes every entry with a seq up to and including `seq`, in one commit: for a sink that only ever acknowledges
   * a contiguous prefix of the queue (one commit per PUBACK batch instead of one per alert). Throws like `ack`.
   */
  ackThrough(seq: number): void {
    this.#removeAcked(this.#sql.deleteThrough, seq);
  }

  /**
   * Counts one delivery attempt of `seq` (shown as `attempts` by peek). Best effort: the count is informational,
   * so a write that fails (a full disk) is ignored rather than stopping the re-send it describes.
   */
  recordAttempt(seq: number): void {
    this.#assertOpen();
    try {
      this.#sql.syncNormal.run();
      this.#sql.attempt.run(seq);
    } catch (err) {
      this.#options.log.debug({ err, seq, code: errorCode(err) }, 'delivery attempt not counted');
    }
  }

  depth(): number {
    return this.#depth;
  }

  /** Payload bytes waiting. */
  bytes(): number {
    return this.#bytes;
  }

  onEnqueue(listener: () => void): () => void {
    const wrapped = (): void => listener();
    this.#listeners.add(wrapped);
    return () => {
      this.#listeners.delete(wrapped);
    };
  }

  /** Alert events lost since this instance was opened: dropped from the outbox, or reported with `reportLost`. */
  get droppedCount(): number {
    return this.#dropped;
  }

  /** Milliseconds the oldest waiting alert has waited; 0 when the outbox is empty. */
  oldestAgeMs(): number {
    if (this.#closed || this.#depth === 0) return 0;
    const row = this.#sql.oldest.get() as { enqueued_at: number } | undefined;
    return row ? Math.max(0, this.#now() - row.enqueued_at) : 0;
  }

  /** Refreshes the depth and oldest-age gauges (the age grows without any write; the buffer calls this on a timer). */
  updateMetrics(): void {
    this.#updateGauges();
  }

  /** Stops using the connection; closes it when `open()` opened it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    if (this.#ownsDb) this.#db.close();
  }

  /**
   * Runs an acknowledging DELETE ... RETURNING bytes to completion with `.all()`: with `.get()` better-sqlite3 stops
   * after the first row and ignores the result of the reset that commits the autocommit statement, so a commit
   * refused by a full disk went unnoticed and the in-memory depth drifted below what the file holds.
   */
  #removeAcked(statement: Statement<[number]>, seq: number): void {
    this.#assertOpen();
    this.#sql.syncNormal.run();
    const rows = statement.all(seq) as Array<{ bytes: number }>;
    if (rows.length === 0) return;
    this.#depth -= rows.length;
    for (const row of rows) this.#bytes -= row.bytes;
    this.#updateGauges();
  }

  #commitInsert(alert: AlertEvent, payload: string, bytes: number, enqueuedAt: number, rule: RuleStateWrite | undefined): number {
    this.#sql.syncFull.run();
    let depth = this.#depth;
    let total = this.#bytes;
    const dropped: Array<{ seq: number; event_id: string; payload: string }> = [];
    const seq = this.#db.transaction(() => {
      while (depth > 0 && (depth + 1 > this.#options.maxAlerts || total + bytes > this.#options.maxBytes)) {
        const oldest = this.#sql.oldest.get() as { seq: number; bytes: number; event_id: string; payload: string };
        this.#sql.deleteSeq.run(oldest.seq);
        depth--;
        total -= oldest.bytes;
        dropped.push(oldest);
      }
      const info = this.#sql.insert.run(alert.eventId, enqueuedAt, bytes, payload);
      // The rule state that this event makes true commits with it: a crash cannot separate the two.
      if (rule) this.#sql.saveRule.run(rule.key, rule.state, enqueuedAt);
      return Number(info.lastInsertRowid);
    }).immediate();
    this.#depth = depth + 1;
    this.#bytes = total + bytes;
    if (dropped.length > 0) this.#reportDropped(dropped, 'outbox_full');
    return seq;
  }

  /** Deletes up to `count` oldest waiting alerts; returns how many. */
  #dropOldest(count: number, reason: string): number {
    const rows = this.#sql.oldestN.all(count) as Array<{
      seq: number; bytes: number; event_id: string; payload: string;
    }>;
    if (rows.length === 0) return 0;
    try {
      this.#sql.syncNormal.run();
      this.#db.transaction(() => {
        for (const r of rows) this.#sql.deleteSeq.run(r.seq);
      }).immediate();
    } catch (err) {
      this.#options.log.error({ err, code: errorCode(err) }, 'cannot delete alerts to make room on a full disk');
      return 0;
    }
    for (const r of rows) {
      this.#depth--;
      this.#bytes -= r.bytes;
    }
    this.#reportDropped(rows, reason);
    return rows.length;
  }

  #reportDropped(rows: ReadonlyArray<{ seq: number; event_id: string; payload: string }>, reason: string): void {
    for (const r of rows) {
      let alertId: string | undefined;
      try {
        alertId = (JSON.parse(r.payload) as AlertEvent).alertId;
      } catch {
        alertId = undefined;
      }
      this.#options.log.warn({ seq: r.seq, eventId: r.event_id, alertId, reason }, 'alert dropped from the outbox before delivery');
    }
    this.#countDrop(reason, rows.length);
    this.#updateGauges();
  }

  /**
   * An enqueue that throws: logged (the first of a run at warn, the producer's retries at debug), remembered for
   * `reportLost`, not counted as lost (the producer retries it). Returns `err` for the caller to throw.
   */
  #refused(alert: AlertEvent, reason: LostReason, err: unknown): unknown {
    this.#lastRefusal = reason;
    const fields = { err, eventId: alert.eventId, alertId: alert.alertId, reason, code: errorCode(err) };
    if (this.#refusing) this.#options.log.debug(fields, 'the outbox refused an alert');
    else this.#options.log.warn(fields, 'the outbox refuses alerts: cannot store them');
    this.#refusing = true;
    return err;
  }

  #countDrop(reason: string, n: number): void {
    this.#dropped += n;
    this.#metrics?.droppedAlerts.inc({ reason }, n);
  }

  #updateGauges(): void {
    if (!this.#metrics) return;
    this.#metrics.depth.set(this.#depth);
    this.#metrics.oldestAgeSeconds.set(this.oldestAgeMs() / 1000);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the alert outbox is closed');
  }
}
