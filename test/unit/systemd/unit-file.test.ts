import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const UNIT = path.resolve('systemd/lineguard.service');
const DROP_IN = path.resolve('systemd/jetson-gpu.conf');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function directives(file: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

describe('systemd unit', () => {
  it.skipIf(!hasAnalyze)('passes systemd-analyze verify without a warning', () => {
    const copy = path.join(dir, 'lineguard.service');
    copyFileSync(UNIT, copy);
    const run = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect(run.stderr.trim()).toBe('');
    expect(run.status).toBe(0);
  });

  it.skipIf(!hasAnalyze)('has a low systemd-analyze security exposure (the README states it)', () => {
    const copy = path.join(dir, 'lineguard.service');
    copyFileSync(UNIT, copy);
    const out = execFileSync('systemd-analyze', ['security', '--offline=true', copy], { encoding: 'utf8' });
    const m = /Overall exposure level for lineguard\.service: ([\d.]+)/.exec(out);
    expect(m).not.toBeNull();
    const score = Number(m![1]);
    expect(score).toBeLessThanOrEqual(2.0);
    // The README states the score; other systemd versions weigh settings slightly differently.
    const stated = /exposure level (\d+\.\d)/.exec(readFileSync('README.md', 'utf8'));
    expect(stated).not.toBeNull();
    expect(Math.abs(Number(stated![1]) - score)).toBeLessThanOrEqual(0.3);
  });

  it('is Type=notify with a watchdog, restarts on failure but not on a bad config', () => {
    const d = directives(UNIT);
    expect(d.get('Type')).toEqual(['notify']);
    expect(d.get('NotifyAccess')).toEqual(['all']);
    expect(d.get('WatchdogSec')).toBeDefined();
    expect(d.get('Restart')).toEqual(['on-failure']);
    expect(d.get('RestartPreventExitStatus')).toEqual(['78']);
  });

  it('is hardened: dedicated user, read-only system, own state and config dirs, no privileges', () => {
    const d = directives(UNIT);
    expect(d.get('User')).toEqual(['lineguard']);
    expect(d.get('ProtectSystem')).toEqual(['strict']);
    expect(d.get('StateDirectory')).toEqual(['lineguard']);
    expect(d.get('ConfigurationDirectory')).toEqual(['lineguard']);
    expect(d.get('NoNewPrivileges')).toEqual(['yes']);
    expect(d.get('PrivateTmp')).toEqual(['yes']);
    expect(d.get('CapabilityBoundingSet')).toEqual(['']);
    expect(d.get('SystemCallFilter')?.[0]).toBe('@system-service');
    expect(d.get('LoadCredential')?.length).toBeGreaterThan(0);
  });

  it.skipIf(!hasAnalyze)('the Jetson drop-in opens only the NVIDIA devices and still verifies', () => {
    const d = directives(DROP_IN);
    expect(d.get('DevicePolicy')).toEqual(['closed']);
    expect(d.get('DeviceAllow')?.some((x) => x.startsWith('/dev/nvmap'))).toBe(true);
    expect(d.get('DeviceAllow')?.some((x) => x.startsWith('/dev/nvhost-'))).toBe(true);
    const unitDir = mkdtempSync(path.join(dir, 'jetson-'));
    copyFileSync(UNIT, path.join(unitDir, 'lineguard.service'));
    execFileSync('mkdir', ['-p', path.join(unitDir, 'lineguard.service.d')]);
    copyFileSync(DROP_IN, path.join(unitDir, 'lineguard.service.d', 'jetson-gpu.conf'));
    const run = spawnSync('systemd-analyze', ['verify', path.join(unitDir, 'lineguard.service')], { encoding: 'utf8' });
    expect(run.status).toBe(0);
  });
});
