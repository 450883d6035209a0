import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, type DaemonOptions } from '../../../src/daemon/daemon.js';
import { BlackHole } from '../../fixtures/mqtt/black-hole.js';
import { loadConfigFile } from '../../../src/daemon/config/load.js';
import { createLogger, SecretRedactor } from '../../../src/daemon/logger.js';

/**
 * The daemon in-process, against the real broker and a "black hole" (a TCP port that accepts and never answers,
 * like a broker behind a dead NAT): what happens when signals and reloads arrive while components start.
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-races-'));
let blackHole: BlackHole;

beforeAll(async () => {
  blackHole = await BlackHole.start();
});

afterAll(async () => {
  await blackHole.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  daemon: Daemon;
  file: string;
  lines: Array<Record<string, unknown>>;
  raw: string[];
  log: ReturnType<typeof createLogger>;
}

const running: Daemon[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

let seq = 0;
/** A config with source `slow` on the black hole (when given) before source `b` on the real broker. */
function config(o: { id?: string; topicB: string; slowConnectMs?: number; stateDir?: string; passwordEnv?: string; httpPort?: number }): string {
  const prefix = `lineguard-races/${process.pid}`;
  return `gateway: { id: ${o.id ?? 'races'}, stateDir: ${JSON.stringify(o.stateDir ?? path.join(dir, 'state'))} }
log: { level: debug }
http: { port: ${o.httpPort ?? 0} }
mqtt:
  brokers:
    - { name: local, url: "${MQTT_URL}"${o.passwordEnv ? `, username: lineguard, password: "\${env:${o.passwordEnv}}"` : ''} }
    - { name: hole, url: "${blackHole.url}", connectTimeoutMs: ${o.slowConnectMs ?? 300000}, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }
  sources:
${o.slowConnectMs === undefined ? '' : `    - { name: slow, broker: hole, topics: [${prefix}/slow/+], values: [{ tag: "slow.{4}" }] }\n`}    - { name: b, broker: local, topics: [${JSON.stringify(`${prefix}/${o.topicB}/+`)}], values: [{ tag: "b.{4}" }] }
`;
}

function daemonFor(text: string, options: DaemonOptions = {}): Running {
  const file = path.join(dir, `gw-${++seq}.yaml`);
  writeFileSync(file, text);
  const loaded = loadConfigFile(file);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const redactor = new SecretRedactor();
  redactor.set(loaded.secrets);
  const log = createLogger({ level: 'debug', destination }, redactor);
  const daemon = new Daemon(file, loaded, log, redactor, options);
  running.push(daemon);
  return { daemon, file, lines, raw, log };
}

const topicsOf = (d: Daemon, name: string): unknown => d.component(name)?.health().details?.topics;
const prefixed = (topic: string): string[] => [`lineguard-races/${process.pid}/${topic}/+`];

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('daemon lifecycle races', () => {
  it('a component whose start() hangs is reported down after the start timeout; the others start', async () => {
    const { daemon } = daemonFor(config({ topicB: 'hang-b', slowConnectMs: 300_000 }), { startTimeoutMs: 300 });
    const t0 = Date.now();
    await daemon.start();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(daemon.health().components['mqtt-source/slow']).toMatchObject({
      state: 'down', reason: 'start() has not finished after 0.3 s; the rest of the gateway started without it',
    });
    await until(() => daemon.component('mqtt-source/b')?.health().state === 'up', 'source b up');
    const stopped = Date.now();
    await daemon.stop();
    expect(Date.now() - stopped).toBeLessThan(10_000);
    expect(daemon.component('mqtt-source/slow')).toBeUndefined();
  });

  it('stop() during start() stops what started and starts nothing more', async () => {
    const { daemon } = daemonFor(config({ topicB: 'term-b', slowConnectMs: 5_000 }));
    const starting = daemon.start();
    await until(() => daemon.component('mqtt-source/slow') !== undefined, 'source slow starting');
    await daemon.stop();
    await starting;
    const late = daemon.component('mqtt-source/b');
    // Started after stop() looked at what runs, it would hold its broker connection open: the process could not exit.
    await late?.stop();
    expect(late).toBeUndefined();
    expect(daemon.health().components).toEqual({});
  });

  it('a reload during start() waits for it and applies the new config; no component runs twice', async () => {
    const { daemon, file } = daemonFor(config({ topicB: 'hup-b1', slowConnectMs: 1_500 }));
    const starting = daemon.start();
    await until(() => daemon.component('mqtt-source/slow') !== undefined, 'source slow starting');
    writeFileSync(file, config({ topicB: 'hup-b2', slowConnectMs: 1_500 }));
    const reloaded = daemon.reload();
    await starting;
    expect(await reloaded).toMatchObject({ ok: true, restarted: ['mqtt-source/b'] });
    expect(topicsOf(daemon, 'mqtt-source/b')).toEqual(prefixed('hup-b2'));
  });

  it('a reload asked for while one runs is not lost: the last saved file wins', async () => {
    const { daemon, file } = daemonFor(config({ topicB: 'again-1' }));
    await daemon.start();
    writeFileSync(file, config({ topicB: 'again-2' }));
    const first = daemon.reload();
    writeFileSync(file, config({ topicB: 'again-3' }));
    const second = daemon.reload();
    expect((await first).ok).toBe(true);
    expect((await second).ok).toBe(true);
    expect(topicsOf(daemon, 'mqtt-source/b')).toEqual(prefixed('again-3'));
  });

  it('a reload whose stateDir cannot be created changes nothing', async () => {
    const { daemon, file } = daemonFor(config({ topicB: 'state-1' }));
    await daemon.start();
    writeFileSync(file, config({ topicB: 'state-2', stateDir: path.join(file, 'state') }));
    const result = await daemon.reload();
    expect(result.ok).toBe(false);
    expect(result.errors).toEqual([`${file}: cannot create gateway.stateDir ${path.join(file, 'state')} (ENOTDIR)`]);
    expect(daemon.config.gateway.stateDir).toBe(path.join(dir, 'state'));
    expect(topicsOf(daemon, 'mqtt-source/b')).toEqual(prefixed('state-1'));
  });

  it('/metrics has fresh lineguard_component_up without anyone asking /healthz, and the gateway label follows a reload', async () => {
    const { daemon, file } = daemonFor(config({ id: 'races-m1', topicB: 'metrics' }));
    await daemon.start();
    await until(() => daemon.component('mqtt-source/b')?.health().state === 'up', 'source b up');
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${daemon.httpPort}/metrics`)).text();
    expect(await scrape()).toMatch(/^lineguard_component_up\{component="mqtt-source\/b",gateway="races-m1"\} 1$/m);
    writeFileSync(file, config({ id: 'races-m2', topicB: 'metrics' }));
    expect((await daemon.reload()).ok).toBe(true);
    const text = await scrape();
    expect(text).toMatch(/^lineguard_component_up\{component="buffer",gateway="races-m2"\} 1$/m);
    expect(text).not.toContain('gateway="races-m1"');
  });

  it('/metrics and /healthz on a port that was taken at start come up at the next reload', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    const { daemon } = daemonFor(config({ topicB: 'http', httpPort: port }));
    await daemon.start();
    expect(daemon.httpPort).toBeUndefined();
    await new Promise((resolve) => taken.close(resolve));
    expect(await daemon.reload()).toMatchObject({ ok: true, restarted: ['http'] });
    expect(daemon.httpPort).toBe(port);
    expect([200, 503]).toContain((await fetch(`http://127.0.0.1:${port}/healthz`)).status);
  });

  it('a secret replaced by a reload stays redacted', async () => {
    process.env.LG_RACES_PW = 'Old-Secret-0815';
    const { daemon, file, log, raw } = daemonFor(config({ topicB: 'secret', passwordEnv: 'LG_RACES_PW' }));
    await daemon.start();
    process.env.LG_RACES_PW = 'New-Secret-4711';
    writeFileSync(file, `${config({ topicB: 'secret', passwordEnv: 'LG_RACES_PW' })}\n`);
    expect((await daemon.reload()).ok).toBe(true);
    log.warn({ detail: 'a library echoing Old-Secret-0815 or New-Secret-4711' }, 'echo');
    await new Promise((r) => setImmediate(r));
    const echo = raw.find((l) => l.includes('"echo"'))!;
    expect(echo).toContain('a library echoing [redacted] or [redacted]');
    delete process.env.LG_RACES_PW;
  });
});
