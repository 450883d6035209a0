import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** `npm start` for a newcomer: the embedded demo line must show real alerts within 30 seconds and stop cleanly. */
const BIN = path.resolve('bin/lineguard');
const QUALITY_RAISE = /RAISED .*steel-defect@\S+ \[\w+\] quality_defect class=(Pastry|Z_Scratch|K_Scatch|Stains|Dirtiness|Bumps|Other_Faults): /;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-demo-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lineguard demo', () => {
  it('--print-config prints the generated config, and it passes check-config', () => {
    const printed = spawnSync(process.execPath, [BIN, 'demo', '--print-config'], { encoding: 'utf8', timeout: 60_000 });
    expect(printed.status).toBe(0);
    expect(printed.stdout).toContain('nsu=urn:lineguard:demo-line;s=Press1.Torque');
    // The inspection station's defect messages come over MQTT, one frame per message (no window.periodMs).
    expect(printed.stdout).toContain('demo-line/inspection1/defects');
    expect(printed.stdout).toContain('pointer: /features/X_Minimum');
    expect(printed.stdout).toMatch(/kind: quality_defect/);
    const file = path.join(dir, 'demo.yaml');
    writeFileSync(file, printed.stdout);
    const check = spawnSync(process.execPath, [BIN, 'check-config', file], { encoding: 'utf8', timeout: 60_000 });
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/OK — gateway demo-line, 2 sources \(1 OPC UA, 1 MQTT\), 20 OPC UA tags \+ 27 MQTT value mappings, 3 models, alerts to demo/);
  });

  it('shows a raised and a cleared alert and a quality_defect alert with its class within 30 s, then stops cleanly on SIGINT', { timeout: 90_000 }, async () => {
    const child = spawn(process.execPath, [BIN, 'demo', '--state-dir', path.join(dir, 'state')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c; });
    const t0 = Date.now();
    // Milliseconds from process start (node-opcua loading included) to a raise and its clear on screen.
    const seenAfterMs = await new Promise<number>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = Date.now() - t0;
        const seen = /RAISED .*press-fault/.test(out) && /CLEARED .*press-fault/.test(out) && QUALITY_RAISE.test(out);
        if (seen || elapsed > 45_000) {
          clearInterval(timer);
          resolve(elapsed);
        }
      }, 200);
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(seenAfterMs, out).toBeLessThan(30_000);
    // A defect alert names the model, its kind and the class label from the model's metadata.
    expect(out).toMatch(QUALITY_RAISE);
    expect(out).toMatch(/mosquitto_sub -h 127\.0\.0\.1 -p \d+ -t 'lineguard\/demo-line\/alerts\/#' -v/);
    expect(out).toMatch(/demo stopped: \d+ alerts raised, \d+ cleared\./);
    expect(code).toBe(0);
  });
});
