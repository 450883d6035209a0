import { Type, type Static } from '@sinclair/typebox';
import { ByteSize, Duration, Section, type ConfigIssueReporter } from '../core/config-types.js';
import { parseDuration, parseSize } from '../core/units.js';

/** Default of buffer.outbox.reserveAlerts. */
export const OUTBOX_RESERVE_ALERTS = 2000;

/** `buffer:` — the local SQLite store of samples and the durable alert outbox. */
export const BufferConfigSchema = Section(
  {
    file: Type.Optional(
      Type.String({
        description: 'SQLite database file. Relative paths are under gateway.stateDir.',
        default: 'lineguard.db', minLength: 1, examples: ['lineguard.db'],
      }),
    ),
    flushIntervalMs: Type.Integer({
      description: 'Samples are committed in one transaction at least this often (a crash loses at most this much).',
      minimum: 10, maximum: 60000, default: 250,
    }),
    flushMaxRows: Type.Integer({
      description:
        'A batch is committed early when it holds this many samples. Big batches are split into commits of at most ' +
        '~20 ms each, so the event loop is never blocked long.',
      minimum: 100, maximum: 1000000, default: 20000,
    }),
    durability: Type.Optional(
      Type.Union([Type.Literal('normal'), Type.Literal('full')], {
        description:
          'normal: samples are committed with synchronous=NORMAL: a crash or kill of the gateway loses nothing committed, ' +
          'but a power cut (or kernel panic) can lose the sample commits since the last WAL sync, which happens at each ' +
          'checkpoint (up to 16 MB of WAL: seconds to minutes of samples, by the rate); the database stays intact. ' +
          'full: every sample commit is fsynced (synchronous=FULL) and survives a power cut, at an ingest cost (README, ' +
          'Benchmarks). Alerts are fsynced either way.',
        default: 'normal',
      }),
    ),
    memoryMaxSamples: Type.Integer({
      description:
        'Samples held in memory while the disk cannot be written (full, read-only). Beyond this the oldest are ' +
        'dropped and counted in lineguard_buffer_dropped_samples_total.',
      minimum: 1000, maximum: 50000000, default: 200000,
    }),
    retention: Section(
      {
        maxAge: Duration({ description: 'Samples older than this are deleted.', default: '7d' }),
        maxSize: ByteSize({
          description:
            'The database (samples, tags and outbox) is kept below this size; the oldest samples go first. The ' +
            'write-ahead log adds up to 64 MB beside it.',
          default: '2GB',
        }),
      },
      { description: 'How much history is kept on disk. Old samples are deleted in small steps, never stalling ingest.', default: {} },
    ),
    outbox: Section(
      {
        maxAlerts: Type.Integer({
          description: 'Alerts waiting for delivery beyond this count are dropped, oldest first (counted, logged, shown in /healthz).',
          minimum: 100, maximum: 100_000_000, default: 100000,
        }),
        maxSize: ByteSize({
          description: 'Bound on the alert payloads waiting on disk; beyond it the oldest alerts are dropped. Part of retention.maxSize.',
          default: '256MB',
        }),
        reserveAlerts: Type.Optional(
          Type.Integer({
            description:
              'Disk room kept for this many alerts that only the outbox may use when the disk is full (4 KB each plus ' +
              '1 MB for the write-ahead log, in a file beside the database): samples stop being written first, and alerts ' +
              'are still stored. The default 2000 (9 MB) holds about 4 hours of a busy line raising or clearing 500 ' +
              'alerts an hour. 0: no reserve.',
            minimum: 0, maximum: 1000000, default: OUTBOX_RESERVE_ALERTS,
          }),
        ),
      },
      { description: 'The durable queue of alerts waiting for the broker.', default: {} },
    ),
  },
  { description: 'Local SQLite buffer: every sample is kept here so a network cut loses nothing.', default: {} },
);

export type BufferConfig = Static<typeof BufferConfigSchema>;

/** Smallest database size bound that leaves room for the schema, a few batches and some alerts. */
const MIN_DB_SIZE = 1_000_000;
/** Largest database size bound (a parsed size beyond it is a typo, or Infinity from a 400-digit number). */
const MAX_DB_SIZE = 100e12;
/** Smallest outbox bound: 1 MB holds about 250 alerts of 4 KB, so a raised alert is never dropped at once. */
const MIN_OUTBOX_SIZE = 1_000_000;
/** Longest retention: ten years. */
const MAX_AGE_MS = 3650 * 86_400_000;

/** Cross-field checks; `report` paths are relative to the `buffer` section (the loader prefixes `['buffer']`). */
export function checkBufferConfig(cfg: BufferConfig, report: ConfigIssueReporter): void {
  const dbSize = parseSize(cfg.retention.maxSize);
  const outboxSize = parseSize(cfg.outbox.maxSize);
  if (dbSize < MIN_DB_SIZE) report(['retention', 'maxSize'], `must be at least 1MB (is ${cfg.retention.maxSize})`);
  else if (!(dbSize <= MAX_DB_SIZE)) report(['retention', 'maxSize'], `must be at most 100TB (is ${cfg.retention.maxSize})`);
  if (outboxSize < MIN_OUTBOX_SIZE) {
    report(['outbox', 'maxSize'], `must be at least 1MB, room for about 250 alerts (is ${cfg.outbox.maxSize}); below that every alert would be dropped`);
  } else if (outboxSize >= dbSize) {
    report(
      ['outbox', 'maxSize'],
      `must be smaller than retention.maxSize (${cfg.retention.maxSize}): alerts live in the same database as the samples`,
    );
  }
  const maxAge = parseDuration(cfg.retention.maxAge);
  if (maxAge < 60_000) report(['retention', 'maxAge'], 'must be at least 1m');
  else if (!(maxAge <= MAX_AGE_MS)) report(['retention', 'maxAge'], `must be at most 3650d (is ${cfg.retention.maxAge})`);
  if (cfg.memoryMaxSamples < cfg.flushMaxRows) {
    report(['memoryMaxSamples'], `must be at least flushMaxRows (${cfg.flushMaxRows}): a batch is held in memory until it is committed`);
  }
  if (cfg.file !== undefined && /[\\/]$/.test(cfg.file)) report(['file'], 'names a directory; give a file name, e.g. lineguard.db');
}
