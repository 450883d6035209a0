import type { Database } from 'better-sqlite3';

/**
 * Read-only: the source time of the oldest sample still in the buffer, epoch ms, or null when it holds none. One
 * index seek per tag on the (tag_id, ts) key, so it stays cheap on a full buffer. For the status page, on its own
 * read-only connection (WAL: it never blocks the writer).
 */
export function readOldestSampleTs(db: Database): number | null {
  const row = db
    .prepare('SELECT min((SELECT ts FROM samples s WHERE s.tag_id = t.id ORDER BY ts ASC LIMIT 1)) AS oldest FROM tags t')
    .get() as { oldest: number | null } | undefined;
  return row?.oldest ?? null;
}
