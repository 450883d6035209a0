import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openDatabase } from '../../../src/buffer/database.js';
import { InferenceLog, readInferences } from '../../../src/buffer/inference-log.js';
import { bufferContext } from './buffer-context.js';

describe('the inference record', () => {
  const ctx = bufferContext();
  afterEach(() => ctx.cleanup());

  it('keeps every inference and skipped window, reads them back by model and time, and prunes by age and count', () => {
    const db = openDatabase(join(ctx.stateDir, 'lineguard.db'), { synchronous: 'NORMAL' });
    try {
      const log = new InferenceLog(db);
      log.record({ model: 'm', ts: 2000, at: 20, version: 'v1', outputs: { p: 0.5, modes: [0.1, 0.9] } });
      log.record({ model: 'm', ts: 1000, at: 10, version: 'v1', skipped: 'too_many_invalid', detail: '3 of 8 cells' });
      log.record({ model: 'other', ts: 1500, at: 15, outputs: { p: Number.NaN } });
      expect(log.pending).toBe(3);
      expect(log.commit()).toBe(3);
      expect(readInferences(db, { model: 'm' })).toEqual([
        { model: 'm', ts: 1000, at: 10, version: 'v1', skipped: 'too_many_invalid', detail: '3 of 8 cells' },
        { model: 'm', ts: 2000, at: 20, version: 'v1', outputs: { p: 0.5, modes: [0.1, 0.9] } },
      ]);
      // NaN is kept as what the model returned, not as null.
      expect(readInferences(db, { model: 'other' })[0]!.outputs!.p).toBeNaN();
      expect(readInferences(db, { sinceAt: 15 }).map((r) => r.ts)).toEqual([2000, 1500]);
      expect(log.prune(15)).toBe(1); // the row recorded at 10
      for (let i = 0; i < 10; i++) log.record({ model: 'm', ts: 3000 + i, at: 30 + i, outputs: { p: i } });
      log.commit();
      expect(log.prune(0, 4)).toBe(8);
      expect(readInferences(db, {}).map((r) => r.ts)).toEqual([3006, 3007, 3008, 3009]);
    } finally {
      db.close();
    }
  });
});
