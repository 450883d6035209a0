import Sqlite, { type Database } from 'better-sqlite3';
import { statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import type { AlertEvent } from '../core/alert.js';
import { readOldestSampleTs } from '../buffer/buffer-overview.js';
import { readInferences } from '../buffer/inference-log.js';
import { modelRules } from '../runtime/config.js';
import type { Config } from './config/schema.js';
import type { HealthReport } from './health-server.js';
import type { RecentAlerts } from './recent-alerts.js';
import type { TagRow, TagTable } from './tag-table.js';

/** A tag with no new value for this long counts as stale on the page (a constant value on a deadband may be quiet). */
export const STALE_AFTER_MS = 60_000;
/** The oldest sample is looked up at most this often (it moves only with retention). */
const OLDEST_SAMPLE_TTL_MS = 10_000;
/** Rows /api/outputs answers at most per request; `truncated` says when there were more. */
const MAX_OUTPUT_ROWS = 5_000;
/** Alert events /api/status carries (the newest). */
const MAX_ALERT_EVENTS = 200;
/** Rows /api/tags answers at most. */
const MAX_TAG_ROWS = 500;

/** What the status page reads from the daemon. Nothing here changes state. */
export interface StatusSources {
  report(): HealthReport;
  config(): Config;
  tags: TagTable;
  alerts: RecentAlerts;
  /** The buffer's SQLite file while the buffer runs. */
  bufferFile(): string | undefined;
}

/** Per source: how its tags stand, from the last value of each tag on the bus. */
export interface SourceTags {
  source: string;
  tags: number;
  good: number;
  uncertain: number;
  bad: number;
  stale: number;
  /** Gateway time of the newest sample from this source, epoch ms. */
  lastReceivedAt: number | null;
}

/**
 * The server side of the status page: one JSON document of everything the page shows, the tag table and the model
 * outputs from the buffer's inference record. It opens the buffer file read-only on its own connection (WAL:
 * readers never block the writer), as `lineguard outputs` does.
 */
export class StatusPageData {
  #db: { file: string; db: Database } | undefined;
  #oldest: { at: number; file: string; ts: number | null } | undefined;

  constructor(private readonly sources: StatusSources) {}

  status(): Record<string, unknown> {
    const now = Date.now();
    const report = this.sources.report();
    const config = this.sources.config();
    const alerts = this.sources.alerts.list();
    return {
      now,
      staleAfterMs: STALE_AFTER_MS,
      health: report,
      models: config.models.map((m) => ({
        name: m.name, asset: m.asset ?? null,
        rules: modelRules(m).map((r) => ({
          name: r.name, kind: r.kind, output: r.output ?? null, outputIndex: r.outputIndex, raiseAbove: r.raiseAbove ?? null, clearBelow: r.clearBelow ?? null,
          raiseBelow: r.raiseBelow ?? null, clearAbove: r.clearAbove ?? null,
        })),
      })),
      sources: this.#sourceTags(now),
      tagsIgnored: this.sources.tags.ignored,
      alerts: { events: alerts.slice(-MAX_ALERT_EVENTS).map((e) => ({ enqueuedAt: e.enqueuedAt, ...compactAlert(e.alert) })), total: alerts.length },
      buffer: this.#bufferOverview(now),
    };
  }

  /** The tag table: tags whose name or source contains `query` (case-insensitive), sorted by name. */
  tags(query: string): { rows: TagRow[]; total: number; matched: number } {
    const q = query.trim().toLowerCase();
    const all = this.sources.tags.rows();
    const matched = all.filter((r) => q === '' || r.tag.toLowerCase().includes(q) || r.source.toLowerCase().includes(q));
    matched.sort((a, b) => (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
    return { rows: matched.slice(0, MAX_TAG_ROWS), total: all.length, matched: matched.length };
  }

  /**
   * Inferences and skipped windows of one model recorded (gateway time) at or after `sinceAt`, oldest first. Rows
   * reach the record about a second after the inference (the buffer commits them in batches).
   */
  outputs(model: string, sinceAt: number): { rows: unknown[]; truncated: boolean } {
    const db = this.#open();
    if (!db) return { rows: [], truncated: false };
    const rows = readInferences(db, { model, sinceAt, limit: MAX_OUTPUT_ROWS + 1 });
    return {
      truncated: rows.length > MAX_OUTPUT_ROWS,
      rows: rows.slice(0, MAX_OUTPUT_ROWS).map((r) => ({
        ts: r.ts, at: r.at, ...(r.outputs ? { outputs: r.outputs } : {}), ...(r.skipped ? { skipped: r.skipped } : {}), ...(r.detail ? { detail: r.detail } : {}),
      })),
    };
  }

  close(): void {
    this.#db?.db.close();
    this.#db = undefined;
  }

  #sourceTags(now: number): SourceTags[] {
    const bySource = new Map<string, SourceTags>();
    for (const r of this.sources.tags.rows()) {
      let s = bySource.get(r.source);
      if (!s) bySource.set(r.source, (s = { source: r.source, tags: 0, good: 0, uncertain: 0, bad: 0, stale: 0, lastReceivedAt: null }));
      s.tags++;
      s[r.quality]++;
      if (now - r.receivedAt > STALE_AFTER_MS) s.stale++;
      s.lastReceivedAt = Math.max(s.lastReceivedAt ?? 0, r.receivedAt);
    }
    return [...bySource.values()];
  }

  #bufferOverview(now: number): Record<string, number | string | null> {
    const file = this.sources.bufferFile();
    if (!file) return { file: null };
    const size = (f: string): number | null => {
      try {
        return statSync(f).size;
      } catch {
        return null;
      }
    };
    let diskFreeBytes: number | null = null;
    try {
      const fs = statfsSync(path.dirname(file));
      diskFreeBytes = fs.bavail * fs.bsize;
    } catch {
      // Shown as unknown.
    }
    if (!this.#oldest || this.#oldest.file !== file || now - this.#oldest.at > OLDEST_SAMPLE_TTL_MS) {
      const db = this.#open();
      let ts: number | null = null;
      try {
        ts = db ? readOldestSampleTs(db) : null;
      } catch {
        // A buffer of another schema version, or being replaced: unknown this time.
      }
      this.#oldest = { at: now, file, ts };
    }
    return { file, fileBytes: size(file), walBytes: size(`${file}-wal`), diskFreeBytes, oldestSampleTs: this.#oldest.ts };
  }

  #open(): Database | undefined {
    const file = this.sources.bufferFile();
    if (!file) return undefined;
    if (this.#db?.file === file) return this.#db.db;
    this.close();
    try {
      this.#db = { file, db: new Sqlite(file, { readonly: true, fileMustExist: true }) };
    } catch {
      return undefined;
    }
    return this.#db.db;
  }
}

/** An alert event without its fields the page does not show (the model hash, the payload schema). */
function compactAlert(a: AlertEvent): Record<string, unknown> {
  return {
    eventId: a.eventId, alertId: a.alertId, state: a.state, kind: a.kind, severity: a.severity, asset: a.asset ?? null,
    model: a.model?.name ?? null, source: a.source ?? null, provider: a.provider, output: a.output, rule: a.rule, ts: a.ts,
    raisedAt: a.raisedAt, clearedAt: a.clearedAt ?? null, inputs: a.inputs, message: a.message,
  };
}
