import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import type { AlertEvent } from '../../../src/core/alert.js';
import type { GatewayStatus } from '../../../src/connectors/mqtt/index.js';
import { makeAlert } from '../../support/alert-event.js';
import { Collector, firstDeliveries } from '../../fixtures/mqtt/collector.js';
import { Mosquitto } from '../../support/mosquitto.js';

const SINK_PROCESS = fileURLToPath(new URL('../../fixtures/mqtt/sink-process.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../../../dist/src/connectors/mqtt/index.js', import.meta.url));
const ALERTS = 2000;

let broker: Mosquitto;
let dir: string;

beforeAll(async () => {
  broker = await Mosquitto.start({ persistence: true, maxQueuedMessages: 0 });
  dir = mkdtempSync(join(tmpdir(), 'lineguard-crash-'));
});
afterAll(async () => {
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the sink process and resolves once it reports it started. */
const logs: string[] = [];
async function startSinkProcess(outboxFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [SINK_PROCESS, outboxFile, broker.url, '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    logs.push(d.toString());
  });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sink process did not start: ${stderr}`)), 15_000);
    child.once('exit', (code) => reject(new Error(`sink process exited (${code}): ${stderr}`)));
    lines.once('line', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return child;
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode ?? child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
}

describe.skipIf(!existsSync(BUILT))('the alert sink process killed with SIGKILL mid-drain', () => {
  it('restarted, delivers every alert (in order of first delivery), and the last will announced the crash', { timeout: 60_000 }, async () => {
    const outboxFile = join(dir, 'outbox.db');
    const producer = SqliteAlertOutbox.open(outboxFile);
    for (let i = 0; i < ALERTS; i++) producer.enqueue(makeAlert(i, {}, 300));
    producer.close();

    const scada = await Collector.connect(broker.url, ['lineguard/gw-crash/alerts/#'], { clientId: 'scada-crash', clean: false });
    const status = await Collector.connect(broker.url, ['lineguard/gw-crash/status']);
    try {
      const first = await startSinkProcess(outboxFile);
      await status.until(() => status.json<GatewayStatus>().some((s) => s.state === 'online'), 10_000, 'online status');
      await scada.until(() => scada.messages.length >= 200, 20_000, 'the drain to start');
      first.kill('SIGKILL');
      expect(await exited(first)).toBe('SIGKILL');

      // The broker saw the socket close without DISCONNECT and published the will.
      await status.until(() => status.json<GatewayStatus>().some((s) => s.state === 'offline'), 10_000, 'the last will');
      const will = status.json<GatewayStatus>().find((s) => s.state === 'offline')!;
      expect(will).toMatchObject({ schema: 1, gateway: 'gw-crash', state: 'offline', reason: 'connection-lost' });

      const afterCrash = SqliteAlertOutbox.open(outboxFile);
      const left = afterCrash.depth();
      afterCrash.close();
      expect(left).toBeGreaterThan(0); // killed mid-drain, not after it
      expect(left).toBeLessThan(ALERTS);

      const second = await startSinkProcess(outboxFile);
      const eventIds = (): string[] => scada.json<AlertEvent>().map((a) => a.eventId);
      await scada.until(() => new Set(eventIds()).size >= ALERTS, 30_000, `${ALERTS} distinct alerts`);
      const { order } = firstDeliveries(eventIds());
      expect(order).toEqual(Array.from({ length: ALERTS }, (_, i) => `evt-${i}`));
      await status.until(() => status.json<GatewayStatus>().at(-1)?.state === 'online', 10_000, 'online again');

      second.kill('SIGTERM');
      expect(await exited(second)).toBe(0);
      const done = SqliteAlertOutbox.open(outboxFile);
      expect(done.depth()).toBe(0);
      done.close();
      expect(status.json<GatewayStatus>().at(-1)).toMatchObject({ state: 'offline', reason: 'stopped' });
    } catch (err) {
      console.log(logs.join(''), await broker.log());
      throw err;
    } finally {
      await scada.close();
      await status.close();
    }
  });
});
