import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Issue 13: what a reviewer expects beside the hardening already there. */
const UNIT = readFileSync(path.resolve('systemd/lineguard.service'), 'utf8');

function directive(name: string): string[] {
  return UNIT.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(`${name}=`)).map((l) => l.slice(name.length + 1));
}

function bytes(value: string): number {
  const m = /^(\d+)([KMGT]?)$/.exec(value);
  if (!m) throw new Error(`not a size: ${value}`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

describe('systemd unit limits', () => {
  it('writes no core dump (it would hold the resolved secrets)', () => {
    expect(directive('LimitCORE')).toEqual(['0']);
  });

  it('bounds memory: MemoryHigh below MemoryMax, both documented in the unit', () => {
    const [high] = directive('MemoryHigh');
    const [max] = directive('MemoryMax');
    expect(high).toBeDefined();
    expect(max).toBeDefined();
    expect(bytes(high!)).toBeLessThan(bytes(max!));
    expect(bytes(high!)).toBeGreaterThanOrEqual(512 * 1024 ** 2);
    expect(UNIT).toMatch(/# Memory: .*\n(#.*\n)*MemoryHigh=/);
  });

  it('sees only its own processes in /proc and cannot change resource limits or priorities', () => {
    expect(directive('ProcSubset')).toEqual(['pid']);
    expect(directive('SystemCallFilter')).toContain('~@resources');
  });

  it('has a commented IPAddressAllow/IPAddressDeny template for the plant network', () => {
    expect(UNIT).toMatch(/^# IPAddressDeny=any$/m);
    expect(UNIT).toMatch(/^# IPAddressAllow=localhost$/m);
    expect(UNIT).toMatch(/^# IPAddressAllow=\d+\.\d+\.\d+\.\d+\/\d+$/m);
    expect(directive('IPAddressDeny')).toEqual([]);
  });

  it.skipIf(spawnSync('systemd-analyze', ['--version']).status !== 0)('the template, uncommented, still verifies', () => {
    const opened = UNIT.replace(/^# (IPAddress(Allow|Deny)=.*)$/gm, '$1');
    const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-ip-'));
    const file = path.join(dir, 'lineguard.service');
    writeFileSync(file, opened);
    const run = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    expect(opened).toMatch(/^IPAddressDeny=any$/m);
    expect(run.stderr.trim()).toBe('');
    expect(run.status).toBe(0);
  });
});
