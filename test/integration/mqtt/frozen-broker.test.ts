import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import type { AlertEvent } from '../../../src/core/alert.js';
import type { ComponentHealth } from '../../../src/core/component.js';
import { MqttAlertSink } from '../../../src/connectors/mqtt/index.js';
import { makeAlert } from '../../support/alert-event.js';
import { Collector } from '../../fixtures/mqtt/collector.js';
import { testContext } from '../../fixtures/mqtt/component-context.js';
import { brokerConfig, sinkConfig } from '../../fixtures/mqtt/config-with-defaults.js';
import { Mosquitto } from '../../support/mosquitto.js';

/**
 * A frozen broker (SIGSTOP): the TCP connection stays open and `lineguard_mqtt_connected` stays 1 until the keep-alive
 * gives up, while nothing is acknowledged. The sink must say so from the age of its oldest unacknowledged alert, and
 * deliver everything once the broker runs again. Our own Mosquitto on a free port: the only process signalled.
 */
const MAX_UNACKED_MS = 1_000;
const MAX_UNDELIVERED_MS = 3_000;
const cleanup: Array<() => Promise<void> | void> = [];
let dir: string;
let broker: Mosquitto;

beforeAll(async () => {
  // Unlimited queue: the subscriber is frozen out too, and every delivery is counted.
  broker = await Mosquitto.start({ persistence: false, maxQueuedMessages: 0 });
  dir = mkdtempSync(join(tmpdir(), 'lineguard-frozen-'));
});
afterAll(async () => {
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  broker.thaw();
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function pollUntil<T>(read: () => T, ok: (v: T) => boolean, what: string, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = read();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what} (last: ${JSON.stringify(value)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('MqttAlertSink with a frozen broker', () => {
  it('is degraded within maxUnackedAgeMs while the connection is still open, and delivers every alert after SIGCONT', async () => {
    const outbox = SqliteAlertOutbox.open(join(dir, 'frozen.db'));
    cleanup.push(() => outbox.close());
    const ctx = testContext('gw-frozen');
    cleanup.push(() => ctx.dispose());
    const subscriber = await Collector.connect(broker.url, ['lineguard/gw-frozen/alerts/#'], {
      clientId: 'scada-frozen', clean: false, keepalive: 120,
    });
    cleanup.push(() => subscriber.close());
    // A long keep-alive: the point is that the socket says "connected" for all of the freeze.
    const sink = new MqttAlertSink(
      sinkConfig({ maxInFlight: 50, maxUnackedAgeMs: MAX_UNACKED_MS, maxUndeliveredMs: MAX_UNDELIVERED_MS }),
      brokerConfig({ url: broker.url, keepaliveS: 120, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }),
      ctx,
      outbox,
    );
    cleanup.push(() => sink.stop());
    await sink.start(new AbortController().signal);
    expect(sink.health().state).toBe('up');

    // Warm: a few alerts flow normally.
    for (let i = 0; i < 5; i++) outbox.enqueue(makeAlert(i));
    await pollUntil(() => outbox.depth(), (d) => d === 0, 'first alerts delivered', 5_000);
    expect(sink.health().state).toBe('up');
    expect(await ctx.metricValue('lineguard_alert_oldest_unacked_age_seconds')).toBe(0);

    broker.freeze();
    const frozenAt = Date.now();
    const total = 300;
    for (let i = 5; i < total; i++) {
      outbox.enqueue(makeAlert(i));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }

    const degraded = await pollUntil(() => sink.health(), (h) => h.state !== 'up', 'sink leaves up', MAX_UNACKED_MS + 4_000);
    expect(degraded.state).toBe('degraded');
    // Within the bound (plus the poll period and the time it took to enqueue), not after the keep-alive.
    expect(Date.now() - frozenAt).toBeLessThan(MAX_UNACKED_MS + 3_000);
    expect(degraded.details?.connection).toBe('connected');
    expect(await ctx.metricValue('lineguard_mqtt_connected', { client: 'mqtt-sink' })).toBe(1);
    expect(degraded.reason).toMatch(/^\d+ alert\(s\) not acknowledged by MQTT broker "test", the oldest for \d+(\.\d)? s \(bound 1\.0 s\): \d+ published and waiting for PUBACK/);
    expect(Number(/^(\d+) alert/.exec(degraded.reason!)![1])).toBe(outbox.depth());
    expect(await ctx.metricValue('lineguard_alert_oldest_unacked_age_seconds')).toBeGreaterThan(MAX_UNACKED_MS / 1000);
    expect(sink.undeliverable()).toBeUndefined();

    // Beyond maxUndeliveredMs the sink is down and tells the daemon alerts cannot be delivered — still "connected".
    const down = await pollUntil(() => sink.health(), (h: ComponentHealth) => h.state === 'down', 'sink down', MAX_UNDELIVERED_MS + 4_000);
    expect(down.details?.connection).toBe('connected');
    expect(sink.undeliverable()).toMatch(/^MQTT broker "test" has not acknowledged \d+ alert\(s\), the oldest for [\d.]+ s \(bound 3\.0 s\)$/);

    broker.thaw();
    const eventIds = (): Set<string> => new Set(subscriber.json<AlertEvent>().map((a) => a.eventId));
    await subscriber.until(() => eventIds().size >= total, 15_000, `${total} distinct alerts after SIGCONT`);
    expect([...eventIds()].sort()).toEqual(Array.from({ length: total }, (_, i) => `evt-${i}`).sort());
    await pollUntil(() => outbox.depth(), (d) => d === 0, 'outbox empty after SIGCONT', 10_000);
    const recovered = await pollUntil(() => sink.health(), (h) => h.state === 'up', 'sink up again', 5_000);
    expect(recovered.details).toMatchObject({ unacknowledged: 0, oldestUnackedAgeMs: 0 });
    expect(sink.undeliverable()).toBeUndefined();
    expect(await ctx.metricValue('lineguard_alert_oldest_unacked_age_seconds')).toBe(0);
  });

  it('counts the time without a connection towards undeliverable(), even with an empty outbox', async () => {
    const outbox = SqliteAlertOutbox.open(join(dir, 'nobroker.db'));
    cleanup.push(() => outbox.close());
    const ctx = testContext('gw-nobroker');
    cleanup.push(() => ctx.dispose());
    const sink = new MqttAlertSink(
      sinkConfig({ maxUnackedAgeMs: MAX_UNACKED_MS, maxUndeliveredMs: 1_000 }),
      // A port nobody listens on: refused at once, retried.
      brokerConfig({ url: 'mqtt://127.0.0.1:1', reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }),
      ctx,
      outbox,
    );
    cleanup.push(() => sink.stop());
    await sink.start(new AbortController().signal);
    expect(sink.health().state).toBe('down');
    expect(sink.undeliverable()).toBeUndefined();
    const why = await pollUntil(() => sink.undeliverable(), (w) => w !== undefined, 'undeliverable', 5_000);
    expect(why).toMatch(/^no connection to MQTT broker "test" for [\d.]+ s \(bound 1\.0 s\).*; 0 alert\(s\) wait in the outbox$/);
  });
});
