import type { Database } from 'better-sqlite3';
import { statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Component, ComponentContext, ComponentHealth } from '../core/component.js';
import type { TagSample } from '../core/tag-sample.js';
import { parseDuration, parseSize } from '../core/units.js';
import type { SamplePoint, SeriesReader, TagWindow, WindowReader } from '../core/window.js';
import { SqliteAlertOutbox } from './alert-outbox.js';
import { InferenceLog } from './inference-log.js';
import { sampleMetrics, type SampleMetrics } from './buffer-metrics.js';
import { OUTBOX_RESERVE_ALERTS, type BufferConfig } from './config.js';
import { errorCode, openDatabase } from './database.js';
import { reserveBytesFor } from './disk-reserve.js';
import { SCHEMA_VERSION } from './migrations.js';
import { Retention } from './retention.js';
import { SampleWriter } from './sample-writer.js';
import { TagRegistry } from './tag-registry.js';
import { WindowQueries } from './window-queries.js';
import { WriteFaults } from './write-faults.js';

/** Knobs that are not configuration: defaults suit production; tests and the benchmark change them. */
export interface SampleBufferTuning {
  /** Wall clock for retention by age. */
  now: () => number;
  /** Target duration of one sample commit (the event loop is blocked for it). */
  commitBudgetMs: number;
  /** How often retention, vacuum and the size/age gauges run when idle. */
  maintenanceIntervalMs: number;
  /** Time one retention step may take. */
  pruneBudgetMs: number;
  /** How often a pass deletes samples past retention.maxAge. */
  agePassIntervalMs: number;
  /** Retry delays after a failed commit (disk full, read-only). */
  retryInitialMs: number;
  retryMaxMs: number;
  /** WAL pages after which a commit checkpoints. */
  walAutocheckpointPages: number;
  /**
   * Size of the disk reserve file beside the database, lent to the outbox on a full disk so alerts still fit
   * (0: none). Default: from buffer.outbox.reserveAlerts.
   */
  diskReserveBytes?: number;
  /** Called with each connection after it is opened (tests set `max_page_count` to simulate a full disk). */
  configureConnection?: (db: Database) => void;
}

const DEFAULT_TUNING: SampleBufferTuning = {
  now: Date.now,
  commitBudgetMs: 20,
  maintenanceIntervalMs: 1_000,
  pruneBudgetMs: 10,
  agePassIntervalMs: 10_000,
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  // 16 MB at 4 KB pages: above one big batch's rewrite (the default 1,000 pages halves throughput), small enough
  // that one checkpoint stays in the tens of milliseconds (measured: bench/buffer.ts).
  walAutocheckpointPages: 4_000,
};

/** While retention has a backlog, steps run this often instead of every maintenanceIntervalMs. */
const BUSY_MAINTENANCE_MS = 50;
/** Malformed samples are logged at most this often. */
const INVALID_LOG_INTERVAL_MS = 60_000;
/** How long a dropped alert keeps the buffer's health degraded. */
const ALERT_DROP_DEGRADED_MS = 10 * 60_000;

interface Open {
  db: Database;
  outboxDb: Database;
  tags: TagRegistry;
  writer: SampleWriter;
  windows: WindowQueries;
  retention: Retention;
  outbox: SqliteAlertOutbox;
  inferences: InferenceLog;
  unsubscribe: () => void;
}

/**
 * The SQLite buffer component: subscribes to the tag bus and commits every sample in batches, serves windows to
 * the models, prunes by age and size, and holds the durable alert outbox (`outbox`, in the same file on its own
 * connection).
 *
 * Faults: a commit that fails (SQLITE_FULL, read-only file system, I/O error) rolls back; the samples stay in
 * memory up to `memoryMaxSamples` (the oldest beyond it are dropped and counted), health turns `degraded` with
 * the SQLite error, and commits are retried with backoff until the disk takes them again. Telemetry goes before
 * alerts: see SqliteAlertOutbox.
 */
export class SampleBuffer implements Component, WindowReader, SeriesReader {
  readonly name = 'buffer';
  /** Absolute path of the database file. */
  readonly file: string;
  readonly #cfg: BufferConfig;
  readonly #ctx: ComponentContext;
  readonly #tuning: SampleBufferTuning;
  readonly #metrics: SampleMetrics;
  readonly #faults: WriteFaults;
  #open: Open | undefined;
  #state: 'new' | 'running' | 'failed' | 'stopped' = 'new';
  #startError: string | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #maintenanceTimer: NodeJS.Timeout | undefined;
  #flushImmediate: NodeJS.Immediate | undefined;
  /** Samples still to commit in the current flush round (those pending when it began). */
  #roundRemaining = 0;
  #alertDropsSeen = 0;
  #lastAlertDropAt = Number.NEGATIVE_INFINITY;
  #maintenanceFailed = false;
  #inferencesPrunedAt = Number.NEGATIVE_INFINITY;
  /** Malformed samples already logged, and when (one line a minute at most: the count is in the metrics). */
  #invalidLogged = 0;
  #invalidLoggedAt = Number.NEGATIVE_INFINITY;

  constructor(cfg: BufferConfig, ctx: ComponentContext, tuning: Partial<SampleBufferTuning> = {}) {
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#tuning = { ...DEFAULT_TUNING, ...tuning };
    const file = cfg.file ?? 'lineguard.db';
    this.file = isAbsolute(file) ? file : join(ctx.stateDir, file);
    this.#metrics = sampleMetrics(ctx.metrics);
    this.#faults = new WriteFaults(ctx.log, this.#metrics, {
      file: this.file,
      now: this.#tuning.now,
      retryInitialMs: this.#tuning.retryInitialMs,
      retryMaxMs: this.#tuning.retryMaxMs,
      diskReserveBytes: this.#tuning.diskReserveBytes ?? reserveBytesFor(cfg.outbox.reserveAlerts ?? OUTBOX_RESERVE_ALERTS),
    });
  }

  /** The record of every inference (same database file), written with the buffer's maintenance. */
  get inferences(): InferenceLog {
    return this.#require().inferences;
  }

  /** The durable alert outbox (same database file). Available between start and stop. */
  get outbox(): SqliteAlertOutbox {
    return this.#require().outbox;
  }

  /**
   * Opens the database (creating and migrating it) and starts ingesting. Throws when the file cannot be opened
   * at all (missing permissions, a read-only file system for a new file, a database from a newer version): the
   * daemon shows that as the buffer being down.
   */
  async start(_signal: AbortSignal): Promise<void> {
    if (this.#state !== 'new') throw new Error(`buffer already ${this.#state}`);
    const { log } = this.#ctx;
    let db: Database | undefined;
    let outboxDb: Database | undefined;
    try {
      // buffer.durability: full fsyncs every sample commit (a power cut loses nothing committed), at an ingest cost.
      const synchronous = this.#cfg.durability === 'full' ? 'FULL' : 'NORMAL';
      db = openDatabase(this.file, { synchronous, walAutocheckpointPages: this.#tuning.walAutocheckpointPages });
      outboxDb = openDatabase(this.file, { synchronous: 'FULL', walAutocheckpointPages: this.#tuning.walAutocheckpointPages });
      this.#tuning.configureConnection?.(db);
      this.#tuning.configureConnection?.(outboxDb);
    } catch (err) {
      db?.close();
      outboxDb?.close();
      this.#state = 'failed';
      this.#startError = `cannot open the buffer database ${this.file}: ${(err as Error).message} (${errorCode(err)})`;
      log.error({ err, file: this.file }, 'cannot open the buffer database');
      throw new Error(this.#startError, { cause: err });
    }
    let parts: Omit<Open, 'db' | 'outboxDb' | 'unsubscribe'>;
    try {
      parts = this.#build(db, outboxDb);
    } catch (err) {
      db.close();
      outboxDb.close();
      this.#state = 'failed';
      this.#startError = `cannot use the buffer database ${this.file}: ${(err as Error).message}`;
      log.error({ err, file: this.file }, 'cannot use the buffer database');
      throw err;
    }
    this.#faults.reserveAtStart(db);
    const unsubscribe = this.#ctx.bus.subscribe(this.#onSamples);
    this.#open = { db, outboxDb, unsubscribe, ...parts };
    this.#alertDropsSeen = parts.outbox.droppedCount;
    this.#state = 'running';
    this.#flushTimer = setInterval(() => this.#startRound(), this.#cfg.flushIntervalMs);
    this.#scheduleMaintenance(0);
    log.info(
      { file: this.file, schemaVersion: SCHEMA_VERSION, tags: parts.tags.size, outboxDepth: parts.outbox.depth() },
      'buffer database open',
    );
  }

  /** The parts that work on the open connections: tag ids, writer, retention, windows, outbox. */
  #build(db: Database, outboxDb: Database): Omit<Open, 'db' | 'outboxDb' | 'unsubscribe'> {
    const tags = new TagRegistry(db);
    const writer = new SampleWriter(db, tags, this.#metrics, {
      flushMaxRows: this.#cfg.flushMaxRows,
      memoryMaxSamples: this.#cfg.memoryMaxSamples,
      commitBudgetMs: this.#tuning.commitBudgetMs,
    });
    const retention = new Retention(
      db,
      tags,
      {
        maxAgeMs: parseDuration(this.#cfg.retention.maxAge),
        maxSizeBytes: parseSize(this.#cfg.retention.maxSize),
        now: this.#tuning.now,
        agePassIntervalMs: this.#tuning.agePassIntervalMs,
      },
      (reason, rows) => this.#metrics.prunedRows.inc({ reason }, rows),
    );
    const outbox = new SqliteAlertOutbox(outboxDb, {
      maxAlerts: this.#cfg.outbox.maxAlerts,
      maxBytes: parseSize(this.#cfg.outbox.maxSize),
      log: this.#ctx.log,
      metrics: this.#ctx.metrics,
      makeRoom: () => this.#faults.makeRoomForAlert(retention),
      afterCommit: () => this.#faults.committed(),
    });
    return { tags, writer, retention, outbox, windows: new WindowQueries(db, tags), inferences: new InferenceLog(db, (n) => this.#metrics.droppedSamples.inc({ reason: 'inference_record' }, n)) };
  }

  /** Commits the last batch, stops ingesting and closes the database. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'stopped';
    clearInterval(this.#flushTimer);
    clearTimeout(this.#maintenanceTimer);
    if (this.#flushImmediate) clearImmediate(this.#flushImmediate);
    this.#flushTimer = this.#maintenanceTimer = this.#flushImmediate = undefined;
    const open = this.#open;
    if (!open || !wasRunning) return;
    open.unsubscribe();
    try {
      while (open.writer.pending > 0) open.writer.commitChunk();
    } catch (err) {
      const lost = open.writer.pending;
      this.#metrics.droppedSamples.inc({ reason: 'shutdown' }, lost);
      this.#metrics.writeErrors.inc({ code: errorCode(err) });
      this.#ctx.log.error({ err, lost }, 'final commit failed on stop: samples held in memory are lost');
    }
    this.#metrics.pendingRows.set(0);
    this.#commitInferences(open);
    open.outbox.close();
    for (const db of [open.outboxDb, open.db]) {
      try {
        db.close();
      } catch (err) {
        this.#ctx.log.error({ err }, 'closing the buffer database failed');
      }
    }
    this.#open = undefined;
    this.#ctx.log.info({ written: open.writer.written }, 'buffer database closed');
  }

  health(): ComponentHealth {
    if (this.#state === 'new') return { state: 'starting' };
    if (this.#state === 'stopped') return { state: 'stopped' };
    if (this.#state === 'failed' || !this.#open) return { state: 'down', reason: this.#startError ?? 'not open' };
    const { writer, outbox } = this.#open;
    this.#noteAlertDrops(this.#open);
    const details: Record<string, unknown> = {
      file: this.file,
      pendingSamples: writer.pending,
      writtenSamples: writer.written,
      droppedSamples: writer.dropped,
      outboxDepth: outbox.depth(),
      outboxOldestAgeMs: outbox.oldestAgeMs(),
      droppedAlerts: outbox.droppedCount,
      inferenceRecords: { pending: this.#open.inferences.pending, written: this.#open.inferences.written, dropped: this.#open.inferences.dropped },
    };
    const reasons: string[] = [];
    const writeFailure = this.#faults.healthReason(writer.pending, writer.dropped);
    if (writeFailure) {
      details.writeError = this.#faults.failingCode;
      reasons.push(writeFailure);
    }
    if (this.#tuning.now() - this.#lastAlertDropAt < ALERT_DROP_DEGRADED_MS) {
      reasons.push(`${outbox.droppedCount} alerts dropped before delivery (lineguard_buffer_dropped_alerts_total has the reasons), the last at ${new Date(this.#lastAlertDropAt).toISOString()}`);
    }
    return reasons.length > 0 ? { state: 'degraded', reason: reasons.join('; '), details } : { state: 'up', details };
  }

  /** Ingest counters of this instance: samples waiting for a commit, committed, and dropped. */
  stats(): { pending: number; written: number; dropped: number } {
    const { writer } = this.#require();
    return { pending: writer.pending, written: writer.written, dropped: writer.dropped };
  }

  /**
   * Commits every pending sample now, synchronously. Returns the number committed; a failed commit is handled
   * as in ingest (kept pending, health degraded) and ends the flush.
   */
  flush(): number {
    const open = this.#require();
    let committed = 0;
    while (open.writer.pending > 0) {
      const n = this.#commitChunk(open);
      if (n === 0) break;
      committed += n;
    }
    this.#roundRemaining = 0;
    this.#commitInferences(open);
    return committed;
  }

  /** Runs one retention/vacuum step and refreshes the gauges now (the timer does this on its own; for tests). */
  maintain(): boolean {
    return this.#maintain(this.#require());
  }

  lastN(tags: readonly string[], n: number): TagWindow {
    return this.#require().windows.lastN(tags, n);
  }

  series(tag: string, fromMs: number, toMs: number): SamplePoint[] {
    return this.#require().windows.series(tag, fromMs, toMs);
  }

  recent(tag: string, n: number, toMs: number): SamplePoint[] {
    return this.#require().windows.recent(tag, n, toMs);
  }

  readonly #onSamples = (samples: readonly TagSample[]): void => {
    const open = this.#open;
    if (!open || this.#state !== 'running') return;
    open.writer.add(samples);
    if (open.writer.pending >= this.#cfg.flushMaxRows) this.#startRound();
  };

  /** Begins committing what is pending now, one chunk per event-loop turn. */
  #startRound(): void {
    const open = this.#open;
    if (!open || this.#state !== 'running' || this.#flushImmediate) return;
    if (!this.#faults.retryDue()) return;
    this.#roundRemaining = open.writer.pending;
    if (this.#roundRemaining > 0) this.#flushImmediate = setImmediate(this.#roundStep);
  }

  readonly #roundStep = (): void => {
    this.#flushImmediate = undefined;
    const open = this.#open;
    if (!open || this.#state !== 'running') return;
    const n = this.#commitChunk(open);
    this.#roundRemaining -= n;
    // Keep going while this round has samples left, or a full chunk is already waiting (sustained load).
    if (n > 0 && (this.#roundRemaining > 0 || open.writer.pending >= open.writer.chunkRows)) {
      this.#flushImmediate = setImmediate(this.#roundStep);
    }
  };

  /** One commit with failure bookkeeping. Returns rows committed (0 on failure). */
  #commitChunk(open: Open): number {
    try {
      this.#faults.beforeCommit();
      const n = open.writer.commitChunk();
      this.#faults.succeeded(open.writer.pending, open.writer.dropped);
      this.#logInvalid(open.writer);
      return n;
    } catch (err) {
      this.#faults.failed(err, open.writer.pending, this.#cfg.memoryMaxSamples);
      return 0;
    }
  }

  /** Says which source sends malformed samples (the first time, then at most once a minute). */
  #logInvalid(writer: SampleWriter): void {
    const count = writer.invalid;
    if (count === this.#invalidLogged || this.#tuning.now() - this.#invalidLoggedAt < INVALID_LOG_INTERVAL_MS) return;
    this.#ctx.log.warn(
      { dropped: count - this.#invalidLogged, last: writer.lastInvalid },
      'dropped malformed samples (no usable timestamp, tag name or value): fix the source or its tag mapping',
    );
    this.#invalidLogged = count;
    this.#invalidLoggedAt = this.#tuning.now();
  }

  #scheduleMaintenance(delayMs: number): void {
    this.#maintenanceTimer = setTimeout(() => {
      const open = this.#open;
      if (!open || this.#state !== 'running') return;
      const busy = this.#maintain(open);
      if (this.#state === 'running') this.#scheduleMaintenance(busy ? BUSY_MAINTENANCE_MS : this.#tuning.maintenanceIntervalMs);
    }, delayMs);
  }

  /** Retention step, gauges, alert-drop tracking. Never throws. Returns true when retention has a backlog. */
  #maintain(open: Open): boolean {
    let busy = false;
    this.#commitInferences(open);
    this.#faults.restoreReserve();
    try {
      // While commits fail, deletes would fail the same way; retention resumes with the writes.
      if (!this.#faults.failingCode) busy = open.retention.step(this.#tuning.pruneBudgetMs);
      if (this.#maintenanceFailed) this.#ctx.log.info('buffer retention running again');
      this.#maintenanceFailed = false;
    } catch (err) {
      this.#metrics.writeErrors.inc({ code: errorCode(err) });
      if (!this.#maintenanceFailed) this.#ctx.log.error({ err, code: errorCode(err) }, 'buffer retention step failed; retrying');
      this.#maintenanceFailed = true;
    }
    try {
      this.#metrics.dbSizeBytes.set({ file: 'db' }, fileSize(this.file));
      this.#metrics.dbSizeBytes.set({ file: 'wal' }, fileSize(`${this.file}-wal`));
      open.outbox.updateMetrics();
    } catch (err) {
      this.#ctx.log.debug({ err }, 'buffer gauges not updated');
    }
    this.#noteAlertDrops(open);
    return busy;
  }

  /** Commits the queued inference records and prunes them by age like samples. Never throws. */
  #commitInferences(open: Open): void {
    if (this.#faults.failingCode) return;
    try {
      open.inferences.commit();
      const now = this.#tuning.now();
      if (now - this.#inferencesPrunedAt >= this.#tuning.agePassIntervalMs) {
        this.#inferencesPrunedAt = now;
        // At most a tenth of retention.maxSize (a row is ~150 bytes): 1.3M inferences for the default 2GB.
        open.inferences.prune(now - parseDuration(this.#cfg.retention.maxAge), Math.floor(parseSize(this.#cfg.retention.maxSize) / 10 / 150));
      }
    } catch (err) {
      this.#metrics.writeErrors.inc({ code: errorCode(err) });
      this.#ctx.log.debug({ err, code: errorCode(err) }, 'inference records not committed; retried with the next maintenance');
    }
  }

  /** Remembers when the outbox last dropped an alert (health stays degraded for a while after). */
  #noteAlertDrops(open: Open): void {
    const drops = open.outbox.droppedCount;
    if (drops !== this.#alertDropsSeen) {
      this.#alertDropsSeen = drops;
      this.#lastAlertDropAt = this.#tuning.now();
    }
  }

  #require(): Open {
    if (!this.#open) throw new Error(this.#state === 'stopped' ? 'the buffer is stopped' : 'the buffer is not started');
    return this.#open;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
