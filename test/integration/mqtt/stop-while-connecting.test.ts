import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlackHole } from '../../fixtures/mqtt/black-hole.js';

/**
 * A connection stopped while it still waits for the broker's CONNACK (a broker behind a dead NAT, a stop or reload
 * during startup) must let go of everything at once. Run in a process of its own, from the build (dist/), because
 * what is checked is that the process can exit: a leftover socket or timer would keep it alive.
 */
let blackHole: BlackHole;

beforeAll(async () => {
  blackHole = await BlackHole.start();
});

afterAll(async () => {
  await blackHole.close();
});

function script(port: number): string {
  const dist = (file: string): string => JSON.stringify(pathToFileURL(path.resolve('dist/src', file)).href);
  return `
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { MqttAlertSink, MqttSource } from ${dist('connectors/mqtt/index.js')};
import { TagBus } from ${dist('core/tag-bus.js')};
const broker = {
  name: 'hole', url: 'mqtt://127.0.0.1:${port}', protocolVersion: 4, cleanSession: false, sessionExpiryS: 60, keepaliveS: 30,
  connectTimeoutMs: 60000, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
};
const ctx = { log: pino({ level: 'warn' }, pino.destination(2)), metrics: new Registry(), bus: new TagBus(), gatewayId: 'gw', stateDir: '/tmp' };
const source = new MqttSource({
  name: 's', broker: 'hole', format: 'json', topics: ['t/#'], qos: 1, values: [{ tag: 't', pointer: '', type: 'auto' }],
  tagPrefix: '', sparkplug: {}, maxPayloadBytes: 1000,
}, broker, ctx);
const outbox = {
  enqueue() { throw new Error('unused'); }, loadRuleState: () => undefined, saveRuleState: () => true,
  peek: () => [], peekAfter: () => [], ack() {}, ackThrough() {}, recordAttempt() {}, depth: () => 0, onEnqueue: () => () => {},
};
const sink = new MqttAlertSink({ broker: 'hole', topic: 'a/{model}', statusTopic: 's/{gateway}', maxInFlight: 10 }, broker, ctx, outbox);
const abort = new AbortController();
const started = Promise.all([source.start(abort.signal), sink.start(abort.signal)]);
setTimeout(async () => {
  abort.abort();
  await started;
  await Promise.all([source.stop(), sink.stop()]);
  process.stdout.write('stopped\\n');
}, 300);
`;
}

describe('BrokerConnection stopped before CONNACK', () => {
  it('closes its socket and timers: the process exits at once, not after connectTimeoutMs', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script(blackHole.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const outcome = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 8 s later'), 8_000))]);
    child.kill('SIGKILL');
    expect({ outcome, stdout, stderr }).toEqual({ outcome: 0, stdout: 'stopped\n', stderr: '' });
  });
});
