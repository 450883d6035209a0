import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonProcess } from '../../support/daemon-process.js';

/**
 * The daemon as a process: JSON logs, /healthz and /metrics, SIGHUP reload (bad file refused, one changed section
 * restarts one component), secrets kept out of the logs, SIGTERM within 10 s with exit 0.
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const SECRET = 'Pl4nt-S3cret-Value!';
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-daemon-'));
const configFile = path.join(dir, 'lineguard.yaml');

function config(options: { topicB: string; level?: string; extra?: string }): string {
  return `gateway: { id: lifecycle-test, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }
log: { level: ${options.level ?? 'info'} }
http: { port: 0 }
mqtt:
  brokers:
    - name: local
      url: ${MQTT_URL}
      username: lineguard
      password: "\${env:LINEGUARD_TEST_MQTT_PASSWORD}"
  sources:
    - name: a
      broker: local
      topics: [lineguard-test/${process.pid}/a/+]
      values: [{ tag: "a.{4}", pointer: /v }]
    - name: b
      broker: local
      topics: [${options.topicB}]
      values: [{ tag: "b.{4}", pointer: /v }]
  alerts: { broker: local, topic: "lineguard-test/${process.pid}/alerts/{model}" }
${options.extra ?? ''}`;
}

let daemon: DaemonProcess;
let baseUrl: string;

beforeAll(async () => {
  writeFileSync(configFile, config({ topicB: `lineguard-test/${process.pid}/b/+` }));
  daemon = new DaemonProcess(['run', '--config', configFile], { LINEGUARD_TEST_MQTT_PASSWORD: SECRET });
  const serving = await daemon.waitForMessage('serving /metrics and /healthz');
  baseUrl = String(serving.url);
  await daemon.waitForMessage('lineguard ready');
}, 60_000);

afterAll(async () => {
  await daemon?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('lineguard run', () => {
  it('logs JSON lines on stdout when stdout is not a terminal', () => {
    expect(daemon.rawStdout.length).toBeGreaterThan(3);
    for (const raw of daemon.rawStdout) expect(() => JSON.parse(raw)).not.toThrow();
    const started = daemon.lines.find((l) => l.msg === 'gateway started')!;
    expect(started.components).toEqual(['buffer', 'mqtt-sink', 'mqtt-source/a', 'mqtt-source/b', 'source-watch']);
  });

  it('/healthz shows every component, 200 when all are up', async () => {
    const deadline = Date.now() + 20_000;
    let res: Response;
    let body: { status: string; components: Record<string, { state: string }>; reasons: string[] };
    do {
      res = await fetch(`${baseUrl}/healthz`);
      body = (await res.json()) as typeof body;
      if (body.status === 'up') break;
      await new Promise((r) => setTimeout(r, 250));
    } while (Date.now() < deadline);
    expect(body.reasons).toEqual([]);
    expect(res.status).toBe(200);
    expect(body.status).toBe('up');
    expect(Object.keys(body.components).sort()).toEqual(['buffer', 'mqtt-sink', 'mqtt-source/a', 'mqtt-source/b', 'source-watch']);
    expect(JSON.stringify(body)).not.toContain(SECRET);
  });

  it('/metrics serves Prometheus text with lineguard_* names', async () => {
    const res = await fetch(`${baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/^# TYPE lineguard_component_up gauge$/m);
    expect(text).toMatch(/^lineguard_component_up\{component="buffer",gateway="lifecycle-test"\} 1$/m);
    expect(text).toMatch(/^lineguard_process_resident_memory_bytes\{gateway="lifecycle-test"\} \d+/m);
    const names = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(name).toMatch(/^lineguard_/);
  });

  it('SIGHUP with an invalid file keeps the old config running and logs every error', async () => {
    const from = daemon.lines.length;
    writeFileSync(configFile, `${config({ topicB: `lineguard-test/${process.pid}/b/+` })}buffer: { flushIntervalMs: soon, retention: { maxAge: forever } }\n`);
    daemon.signal('SIGHUP');
    await daemon.waitForMessage('config reload refused: the gateway keeps running on the previous config');
    const errors = daemon.since(from).filter((l) => typeof l.configError === 'string').map((l) => l.configError);
    expect(errors).toEqual([
      `${configFile}:20:28 buffer.flushIntervalMs: expected an integer (a whole number), found string "soon"`,
      `${configFile}:20:55 buffer.retention.maxAge: expected a duration such as 250ms, 30s, 5m, 12h or 7d, found string "forever"`,
    ]);
    const res = await fetch(`${baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(daemon.since(from).some((l) => l.msg === 'component stopped' || l.msg === 'gateway stopped')).toBe(false);
  });

  it('SIGHUP with one changed source restarts only that source', async () => {
    const from = daemon.lines.length;
    writeFileSync(configFile, config({ topicB: `lineguard-test/${process.pid}/b2/+`, level: 'debug' }));
    daemon.signal('SIGHUP');
    const reloaded = await daemon.waitForMessage('config reloaded');
    expect(reloaded.restarted).toEqual(['mqtt-source/b']);
    expect(reloaded.started).toEqual([]);
    expect(reloaded.stopped).toEqual([]);
    expect(reloaded.unchanged).toBe(4);
    expect(daemon.since(from).some((l) => l.component === 'mqtt-source' && l.instance === 'a' && /stop/i.test(l.msg))).toBe(false);
  });

  it('never writes a secret to the log', () => {
    expect(daemon.rawStdout.join('\n')).not.toContain(SECRET);
    expect(daemon.stderr).not.toContain(SECRET);
  });

  it('SIGTERM stops it cleanly within 10 s with exit code 0', async () => {
    const t0 = Date.now();
    daemon.signal('SIGTERM');
    const exit = await daemon.exit;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(daemon.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);
  });
});
