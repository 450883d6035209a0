import type { Database } from 'better-sqlite3';

/**
 * Schema migrations, applied in order by `PRAGMA user_version`: migration i (0-based) moves the database from
 * version i to i + 1. A migration runs inside one transaction with the version bump, so a crash mid-migration
 * leaves the previous version intact. Never edit a shipped migration: append a new one.
 */
const MIGRATIONS: readonly string[] = [
  // 1: tags, samples, alert outbox.
  `
  CREATE TABLE tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT ''
  );

  -- WITHOUT ROWID keyed (tag_id, ts): the window queries are index range scans on the table itself, the file is
  -- about half the size of a rowid table plus index, and deleting the oldest rows of a tag touches few pages.
  -- value: numbers as REAL, booleans as 0/1 (kind 1), NULL for strings; text: string values (kind 2).
  -- quality: 0 good, 1 uncertain, 2 bad. status: the source's status code, when it has one.
  CREATE TABLE samples (
    tag_id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL,
    quality INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    status INTEGER,
    text TEXT,
    PRIMARY KEY (tag_id, ts)
  ) WITHOUT ROWID;

  -- AUTOINCREMENT so a seq is never reused, even after the queue was empty: the sink may remember seqs.
  CREATE TABLE alert_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL,
    payload TEXT NOT NULL
  );
  `,
  // 2: alert rule state (committed with the outbox event it causes) and the record of every inference.
  `
  -- One row per alert rule (<model>/<rule>): the rule's snapshot as JSON, written in the transaction of the outbox
  -- event it causes, so a crash between the two cannot happen.
  CREATE TABLE alert_rule_state (
    rule_key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );

  -- Every inference and every skipped one: ts is the source time of the window's end, at the gateway time it ran.
  -- outputs: JSON {name: number | number[]}; skipped: the reason when no inference ran. Pruned like samples.
  CREATE TABLE inference_log (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    ts INTEGER NOT NULL,
    at INTEGER NOT NULL,
    version TEXT,
    outputs TEXT,
    skipped TEXT,
    detail TEXT
  );
  CREATE INDEX inference_log_model_ts ON inference_log (model, ts);
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database up to SCHEMA_VERSION. Refuses a database written by a newer version (downgrading the
 * daemon must not silently misread it). Returns the version found before migrating.
 */
export function migrate(db: Database): number {
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > SCHEMA_VERSION) {
    throw new Error(
      `database ${db.name} has schema version ${found}, newer than this version of lineguard understands (${SCHEMA_VERSION})`,
    );
  }
  for (let version = found; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      // Re-read under the write lock: another connection may have migrated since we looked.
      const current = db.pragma('user_version', { simple: true }) as number;
      if (current !== version) return;
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  return found;
}
