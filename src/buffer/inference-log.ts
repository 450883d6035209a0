import type { Database, Statement } from 'better-sqlite3';
import type { InferenceRecorder, InferenceRow } from '../core/inference-record.js';

/** Rows kept in memory while the disk refuses writes; beyond it the oldest are dropped (and counted). */
const MAX_PENDING = 100_000;
/** Rows deleted per retention statement (small deletes keep the WAL small). */
const PRUNE_CHUNK = 5_000;

/**
 * The `inference_log` table: one row per inference or skipped window. Rows are queued in memory and committed in
 * one transaction by the buffer's maintenance (about once a second, and on stop), with `synchronous = NORMAL`
 * like samples: a crash loses at most the last second of the record, never an alert (those are in the outbox).
 */
export class InferenceLog implements InferenceRecorder {
  readonly #insert: Statement<[string, number, number, string | null, string | null, string | null, string | null]>;
  readonly #prune: Statement<[number, number]>;
  readonly #pruneBeyond: Statement<[number, number]>;
  readonly #db: Database;
  #pending: InferenceRow[] = [];
  #dropped = 0;
  #written = 0;

  /** @param onDrop told of records dropped because the disk refused them for too long (a metric, never silent). */
  constructor(db: Database, private readonly onDrop: (n: number) => void = () => {}) {
    this.#db = db;
    this.#insert = db.prepare('INSERT INTO inference_log (model, ts, at, version, outputs, skipped, detail) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#prune = db.prepare('DELETE FROM inference_log WHERE id IN (SELECT id FROM inference_log WHERE at < ? ORDER BY id LIMIT ?)');
    this.#pruneBeyond = db.prepare(
      'DELETE FROM inference_log WHERE id IN (SELECT id FROM inference_log WHERE id <= (SELECT max(id) FROM inference_log) - ? ORDER BY id LIMIT ?)',
    );
  }

  record(row: InferenceRow): void {
    this.#pending.push(row);
    if (this.#pending.length > MAX_PENDING) {
      const n = this.#pending.length - MAX_PENDING;
      this.#pending.splice(0, n);
      this.#dropped += n;
      this.onDrop(n);
    }
  }

  /** Rows queued and not yet committed. */
  get pending(): number {
    return this.#pending.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  get written(): number {
    return this.#written;
  }

  /** Commits the queued rows in one transaction. Throws (and keeps them queued) when the commit fails. */
  commit(): number {
    const rows = this.#pending;
    if (rows.length === 0) return 0;
    this.#db.transaction(() => {
      for (const r of rows) {
        this.#insert.run(
          r.model, Math.round(r.ts), Math.round(r.at), r.version ?? null,
          r.outputs ? JSON.stringify(r.outputs, finiteOrString) : null, r.skipped ?? null, r.detail ?? null,
        );
      }
    })();
    this.#pending = [];
    this.#written += rows.length;
    return rows.length;
  }

  /**
   * Deletes one chunk of rows recorded before `beforeAt`, and of rows beyond the newest `maxRows` (the record must
   * not crowd the samples out of retention.maxSize); returns how many.
   */
  prune(beforeAt: number, maxRows = Number.POSITIVE_INFINITY): number {
    let n = this.#prune.run(Math.floor(beforeAt), PRUNE_CHUNK).changes;
    if (Number.isFinite(maxRows)) n += this.#pruneBeyond.run(Math.max(0, Math.floor(maxRows)), PRUNE_CHUNK).changes;
    return n;
  }
}

/** JSON has no NaN or Infinity: they are written as strings so the record says what the model really returned. */
function finiteOrString(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

export interface InferenceQuery {
  model?: string;
  /** Rows with ts (source time) at or after this, epoch ms. */
  sinceTs?: number;
  /** Rows recorded (gateway time) at or after this, epoch ms. */
  sinceAt?: number;
  limit?: number;
}

/** Reads the record, oldest first (by source time, then by insertion). */
export function readInferences(db: Database, q: InferenceQuery): InferenceRow[] {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (q.model !== undefined) {
    where.push('model = ?');
    params.push(q.model);
  }
  if (q.sinceTs !== undefined) {
    where.push('ts >= ?');
    params.push(Math.floor(q.sinceTs));
  }
  if (q.sinceAt !== undefined) {
    where.push('at >= ?');
    params.push(Math.floor(q.sinceAt));
  }
  const sql =
    'SELECT model, ts, at, version, outputs, skipped, detail FROM inference_log' +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY model, ts, id${q.limit !== undefined ? ` LIMIT ${Math.floor(q.limit)}` : ''}`;
  const rows = db.prepare(sql).all(...params) as Array<{
    model: string; ts: number; at: number; version: string | null; outputs: string | null; skipped: string | null; detail: string | null;
  }>;
  return rows.map((r) => {
    const row: InferenceRow = { model: r.model, ts: r.ts, at: r.at };
    if (r.version !== null) row.version = r.version;
    if (r.outputs !== null) row.outputs = JSON.parse(r.outputs, (_k, v: unknown) => (v === 'NaN' ? Number.NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v)) as InferenceRow['outputs'];
    if (r.skipped !== null) row.skipped = r.skipped;
    if (r.detail !== null) row.detail = r.detail;
    return row;
  });
}
