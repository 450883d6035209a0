import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RateLimitedLog } from '../../../src/connectors/mqtt/rate-limited-log.js';

describe('RateLimitedLog', () => {
  it('logs one line per key per interval and says how many it suppressed', () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({ write: (c: Buffer, _e, cb) => { lines.push(JSON.parse(c.toString()) as Record<string, unknown>); cb(); } });
    let now = 0;
    const log = new RateLimitedLog(pino(stream), 1000, () => now);
    for (let i = 0; i < 50; i++) log.warn('not_json', { i }, 'dropped');
    log.warn('too_large', { i: -1 }, 'dropped');
    now = 1500;
    log.warn('not_json', { i: 99 }, 'dropped');
    expect(lines.map((l) => [l.i, l.suppressedSinceLastLine])).toEqual([[0, undefined], [-1, undefined], [99, 49]]);
  });
});
