import { Type, type Static } from '@sinclair/typebox';
import { ByteSize, Duration, Section } from '../core/config-types.js';

/** `buffer:` — the local SQLite store of samples and the durable alert outbox. */
export const BufferConfigSchema = Section(
  {
    file: Type.Optional(
      Type.String({ description: 'SQLite database file. Relative paths are under gateway.stateDir.', default: 'lineguard.db' }),
    ),
    flushIntervalMs: Type.Integer({
      description: 'Samples are committed in one transaction at least this often (a crash loses at most this much).',
      minimum: 10, maximum: 60000, default: 250,
    }),
    flushMaxRows: Type.Integer({
      description: 'A batch is committed early when it holds this many samples.', minimum: 100, maximum: 1000000, default: 20000,
    }),
    retention: Section(
      {
        maxAge: Duration({ description: 'Samples older than this are deleted.', default: '7d' }),
        maxSize: ByteSize({ description: 'The database is kept below this size; the oldest samples go first.', default: '2GB' }),
      },
      { description: 'How much history is kept on disk.', default: {} },
    ),
    outbox: Section(
      {
        maxAlerts: Type.Integer({
          description: 'Alerts waiting for delivery beyond this count are dropped (counted, logged, shown in /healthz).',
          minimum: 100, default: 100000,
        }),
        maxSize: ByteSize({ description: 'Bound on the outbox size on disk.', default: '256MB' }),
      },
      { description: 'The durable queue of alerts waiting for the broker.', default: {} },
    ),
  },
  { description: 'Local SQLite buffer: every sample is kept here so a network cut loses nothing.', default: {} },
);

export type BufferConfig = Static<typeof BufferConfigSchema>;
