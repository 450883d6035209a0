/** The SQLite buffer: samples, windows for models, and the durable alert outbox. */
export { SqliteAlertOutbox, type AlertOutboxOptions } from './alert-outbox.js';
export { BufferConfigSchema, checkBufferConfig, type BufferConfig } from './config.js';
export { openDatabase, type OpenOptions } from './database.js';
export { SCHEMA_VERSION, migrate } from './migrations.js';
export { SampleBuffer, type SampleBufferTuning } from './sample-buffer.js';
export { WindowQueries } from './window-queries.js';
