import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlackHole } from '../../fixtures/mqtt/black-hole.js';
import { DaemonProcess } from '../../support/daemon-process.js';

/**
 * systemd sends SIGTERM whenever it likes, also while the gateway is still starting (a stop during a slow start, a
 * restart right after a deploy). The process must still exit, within 10 s, with 0.
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-sigterm-start-'));
let blackHole: BlackHole;
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  blackHole = await BlackHole.start();
});

afterAll(async () => {
  await daemon?.kill();
  await blackHole.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('lineguard run', () => {
  it('SIGTERM while a component is still starting: exits 0 within 10 s, with nothing left running', async () => {
    const file = path.join(dir, 'lineguard.yaml');
    writeFileSync(file, `gateway: { id: sigterm-start, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }
http: { port: 0 }
mqtt:
  brokers:
    - { name: hole, url: "${blackHole.url}", connectTimeoutMs: 20000 }
    - { name: local, url: "${MQTT_URL}" }
  sources:
    - { name: slow, broker: hole, topics: [sigterm-start/${process.pid}/slow], values: [{ tag: slow }] }
    - { name: after, broker: local, topics: [sigterm-start/${process.pid}/after], values: [{ tag: after }] }
`);
    daemon = new DaemonProcess(['run', '--config', file]);
    await daemon.waitForMessage('serving /metrics and /healthz');
    await new Promise((r) => setTimeout(r, 300));
    expect(daemon.lines.some((l) => l.msg === 'lineguard ready')).toBe(false);
    const t0 = Date.now();
    daemon.signal('SIGTERM');
    const exit = await Promise.race([daemon.exit, new Promise((r) => setTimeout(() => r('still running after 12 s'), 12_000))]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(daemon.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);
  });
});
