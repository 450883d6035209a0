import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { counter, gauge, histogram } from '../core/metrics.js';

/**
 * The buffer's metrics. The buffer is a single instance per daemon, so its metrics carry no instance label;
 * they are get-or-create so a config reload that rebuilds the buffer keeps counting on the same series.
 */
export interface OutboxMetrics {
  depth: Gauge;
  oldestAgeSeconds: Gauge;
  droppedAlerts: Counter<'reason'>;
  enqueued: Counter;
}

export interface SampleMetrics {
  rowsWritten: Counter;
  commitSeconds: Histogram;
  dbSizeBytes: Gauge<'file'>;
  droppedSamples: Counter<'reason'>;
  prunedRows: Counter<'reason'>;
  writeErrors: Counter<'code'>;
  pendingRows: Gauge;
  walCheckpoints: Counter<'reason' | 'result'>;
  diskReserveBytes: Gauge;
}

export function outboxMetrics(registry: Registry): OutboxMetrics {
  return {
    depth: gauge(registry, { name: 'lineguard_buffer_outbox_depth', help: 'Alerts in the outbox waiting for delivery.' }),
    oldestAgeSeconds: gauge(registry, {
      name: 'lineguard_buffer_outbox_oldest_age_seconds',
      help: 'Age of the oldest alert waiting in the outbox (0 when empty).',
    }),
    droppedAlerts: counter(registry, {
      name: 'lineguard_buffer_dropped_alerts_total',
      help:
        'Alert events lost (never delivered), each logged once with its alertId: outbox_full (count or size bound ' +
        'reached; the oldest waiting goes), disk_full (the oldest waiting dropped to fit a newer one once the disk ' +
        'reserve was used up), and alerts the producer gave up after the outbox refused them (disk_full, write_error, ' +
        'too_large). A refused enqueue that the producer retries is not counted here.',
      labelNames: ['reason'] as const,
    }),
    enqueued: counter(registry, { name: 'lineguard_buffer_alerts_enqueued_total', help: 'Alerts committed to the outbox.' }),
  };
}

export function sampleMetrics(registry: Registry): SampleMetrics {
  return {
    rowsWritten: counter(registry, { name: 'lineguard_buffer_rows_written_total', help: 'Samples committed to the buffer.' }),
    commitSeconds: histogram(registry, {
      name: 'lineguard_buffer_commit_seconds',
      help: 'Duration of one sample batch commit (the event loop is blocked for this long).',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    }),
    dbSizeBytes: gauge(registry, {
      name: 'lineguard_buffer_db_size_bytes',
      help: 'Size of the buffer database on disk: file=db (main file), file=wal (write-ahead log).',
      labelNames: ['file'] as const,
    }),
    droppedSamples: counter(registry, {
      name: 'lineguard_buffer_dropped_samples_total',
      help:
        'Samples lost: memory_bound (not yet written, held in memory while the disk failed, bound reached; the oldest go), ' +
        'invalid_timestamp (not a finite epoch-ms time), invalid_sample (no tag name, or a value that is not a number, boolean or string).',
      labelNames: ['reason'] as const,
    }),
    prunedRows: counter(registry, {
      name: 'lineguard_buffer_pruned_rows_total',
      help: 'Stored samples deleted: age (retention.maxAge), size (retention.maxSize), disk_full (room made for alerts).',
      labelNames: ['reason'] as const,
    }),
    writeErrors: counter(registry, {
      name: 'lineguard_buffer_write_errors_total',
      help: 'Failed buffer writes by SQLite error code (SQLITE_FULL = disk full, SQLITE_READONLY / SQLITE_IOERR_* = file system).',
      labelNames: ['code'] as const,
    }),
    pendingRows: gauge(registry, { name: 'lineguard_buffer_pending_rows', help: 'Samples received but not yet committed.' }),
    walCheckpoints: counter(registry, {
      name: 'lineguard_buffer_wal_checkpoints_total',
      help:
        'WAL checkpoints run besides SQLite\'s own wal_autocheckpoint, to keep the write-ahead log within the free ' +
        'space: reason low_space (the WAL took half of the free space), pressure (past 1 MB while commits fail for room), write_failed (a commit failed for room), room_for_alert; result complete, ' +
        'incomplete, failed (on a full disk: the database file could not grow).',
      labelNames: ['reason', 'result'] as const,
    }),
    diskReserveBytes: gauge(registry, {
      name: 'lineguard_buffer_disk_reserve_bytes',
      help: 'Size of the disk reserve kept for alerts (buffer.outbox.reserveAlerts); below its full size while lent to the outbox on a full disk.',
    }),
  };
}
