import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DiskReserve, reserveBytesFor, RESERVE_BYTES_PER_ALERT, RESERVE_WAL_BYTES } from '../../../src/buffer/disk-reserve.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lg-reserve-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('DiskReserve', () => {
  it('is sized in alerts, plus room for the WAL; 0 alerts is no reserve', () => {
    expect(reserveBytesFor(2000)).toBe(2000 * RESERVE_BYTES_PER_ALERT + RESERVE_WAL_BYTES);
    expect(reserveBytesFor(0)).toBe(0);
    const none = new DiskReserve(join(dir, 'none'), 0);
    expect(none.ensure()).toBe(true);
    expect(none.held).toBe(true);
    expect(none.release()).toBe(0);
  });

  it('is lent in slices from its tail and grown back, in one step or by at most a given amount', () => {
    const path = join(dir, 'reserve');
    const reserve = new DiskReserve(path, 300_000);
    expect(reserve.held).toBe(false);
    expect(reserve.ensure()).toBe(true);
    expect(statSync(path).size).toBe(300_000);
    expect(statSync(path).blocks * 512).toBeGreaterThanOrEqual(300_000 - 4096); // real blocks, not a sparse file

    expect(reserve.release(100_000)).toBe(100_000);
    expect(reserve).toMatchObject({ sizeBytes: 200_000, missingBytes: 100_000, held: false });
    expect(reserve.ensure(40_000)).toBe(false);
    expect(reserve.sizeBytes).toBe(240_000);
    expect(reserve.ensure(0)).toBe(false);
    expect(reserve.ensure()).toBe(true);
    expect(reserve.sizeBytes).toBe(300_000);

    expect(reserve.release(1e9)).toBe(300_000);
    expect(reserve.sizeBytes).toBe(0);
    expect(reserve.release(1)).toBe(0);
    expect(reserve.ensure()).toBe(true);
    expect(reserve.held).toBe(true);
  });
});
