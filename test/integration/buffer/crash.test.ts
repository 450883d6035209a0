import BetterSqlite3 from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import { bufferConfig, bufferContext } from '../../unit/buffer/buffer-context.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CHILD = join(ROOT, 'test/fixtures/buffer/ingest-child.mjs');
const BUILT = join(ROOT, 'dist/src/buffer/index.js');
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface ChildRecord {
  enqueued: number[];
  acked: Set<number>;
  ackStarted: Set<number>;
  lastWritten: number;
}

/** Runs the ingest child until it has enqueued `alerts` alerts plus a random extra moment, then SIGKILLs it. */
async function ingestAndKill(stateDir: string, alerts: number, extraMs: number): Promise<ChildRecord> {
  const child = spawn(process.execPath, [CHILD, stateDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const record: ChildRecord = { enqueued: [], acked: new Set(), ackStarted: new Set(), lastWritten: 0 };
  let stderr = '';
  let partial = '';
  let killTimer: NodeJS.Timeout | undefined;
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, signal) => res(signal)));
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const [kind, value] = line.split(' ');
      if (kind === 'E') record.enqueued.push(Number(value));
      else if (kind === 'A') record.acked.add(Number(value));
      else if (kind === 'K') record.ackStarted.add(Number(value));
      else if (kind === 'W') record.lastWritten = Number(value);
    }
    if (record.enqueued.length >= alerts && !killTimer) killTimer = setTimeout(() => child.kill('SIGKILL'), extraMs);
  });
  const hardStop = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const signal = await exited;
  clearTimeout(hardStop);
  clearTimeout(killTimer);
  expect(signal, `child must die by SIGKILL, not on its own: ${stderr}`).toBe('SIGKILL');
  // A line cut by the kill is not a committed fact: only complete lines count (the last partial is dropped).
  return record;
}

describe('crash safety (SIGKILL mid-ingest)', () => {
  it.each([
    [200, 0],
    [400, 37],
    [800, 113],
  ])('after %i alerts + %i ms: integrity ok, every committed alert present, samples up to the last commit', async (alerts, extraMs) => {
    expect(existsSync(BUILT), 'the crash test runs the built buffer: run `npm run build` first (npm test does)').toBe(true);
    const stateDir = mkdtempSync(join(tmpdir(), 'lg-crash-'));
    dirs.push(stateDir);
    const record = await ingestAndKill(stateDir, alerts, extraMs);
    expect(record.enqueued.length).toBeGreaterThanOrEqual(alerts);
    expect(record.lastWritten).toBeGreaterThan(0);

    const file = join(stateDir, 'crash.db');
    const db = new BetterSqlite3(file);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const stored = new Set(db.prepare('SELECT seq FROM alert_outbox').pluck().all() as number[]);
      const missing = record.enqueued.filter((seq) => !record.ackStarted.has(seq) && !stored.has(seq));
      expect(missing).toEqual([]);
      const resurrected = [...record.acked].filter((seq) => stored.has(seq));
      expect(resurrected).toEqual([]);
      const rows = db.prepare('SELECT count(*) FROM samples').pluck().get() as number;
      expect(rows).toBeGreaterThanOrEqual(record.lastWritten);
    } finally {
      db.close();
    }

    // The daemon starts normally on the file afterwards and keeps the queue.
    const ctx = bufferContext();
    try {
      const buffer = new SampleBuffer(bufferConfig({ file }), ctx);
      await buffer.start(new AbortController().signal);
      expect(buffer.health().state).toBe('up');
      // At most one more than the child reported: the kill may fall between a commit and its stdout line.
      const waiting = record.enqueued.length - record.ackStarted.size;
      expect(buffer.outbox.depth()).toBeGreaterThanOrEqual(waiting);
      expect(buffer.outbox.depth()).toBeLessThanOrEqual(waiting + 2);
      expect(buffer.outbox.peek(1)[0]!.seq).toBe(record.enqueued.find((s) => !record.ackStarted.has(s)));
      const w = buffer.lastN(['line1.sensor0', 'line1.sensor19'], 100);
      expect(w.valid.every((v) => v === 1)).toBe(true);
      await buffer.stop();
    } finally {
      ctx.cleanup();
    }
  });
});
