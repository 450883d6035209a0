import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import type { AlertEvent } from '../../../src/core/alert.js';
import { MqttAlertSink, type GatewayStatus } from '../../../src/connectors/mqtt/index.js';
import { makeAlert, makeModelAlert } from '../../support/alert-event.js';
import { Collector, firstDeliveries } from '../../fixtures/mqtt/collector.js';
import { testContext, type TestContext } from '../../fixtures/mqtt/component-context.js';
import { brokerConfig, sinkConfig } from '../../fixtures/mqtt/config-with-defaults.js';
import { Mosquitto } from '../../support/mosquitto.js';

const fast = { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } };
const cleanup: Array<() => Promise<void> | void> = [];
let dir: string;
let broker: Mosquitto;

beforeAll(async () => {
  // A private broker: these tests stop and restart it, and count every delivery (Mosquitto's default
  // max_queued_messages of 1000 would drop some; this one does not limit the queue).
  broker = await Mosquitto.start({ persistence: true, maxQueuedMessages: 0, logPackets: true });
  dir = mkdtempSync(join(tmpdir(), 'lineguard-sink-'));
});
afterAll(async () => {
  await broker.dispose();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  if (!broker.running) await broker.start();
});

function open(name: string): { outbox: SqliteAlertOutbox; ctx: TestContext } {
  const outbox = SqliteAlertOutbox.open(join(dir, `${name}.db`));
  const ctx = testContext('gw-test');
  cleanup.push(() => ctx.dispose());
  cleanup.push(() => outbox.close());
  return { outbox, ctx };
}

async function waitFor(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MqttAlertSink', () => {
  it('1,000 alerts produced while the broker is stopped and restarted twice: all delivered, in order', async () => {
    const { outbox, ctx } = open('restarts');
    const subscriber = await Collector.connect(broker.url, ['lineguard/gw-test/alerts/#'], { clientId: 'scada-restarts', clean: false });
    cleanup.push(() => subscriber.close());
    const sink = new MqttAlertSink(sinkConfig({ maxInFlight: 50 }), brokerConfig({ url: broker.url, ...fast }), ctx, outbox);
    cleanup.push(() => sink.stop());
    await sink.start(new AbortController().signal);
    expect(sink.health().state).toBe('up');

    let n = 0;
    const produce = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        outbox.enqueue(makeAlert(n++));
        // Spread production over time so the outages really cut into it.
        if (i % 50 === 49) await new Promise((r) => setImmediate(r));
      }
    };
    await produce(250);
    await broker.stop();
    await produce(250);
    await waitFor(() => sink.health().state === 'down', 'sink sees the outage');
    expect(outbox.depth()).toBeGreaterThanOrEqual(250);
    await broker.start();
    await produce(250);
    await waitFor(() => sink.health().state === 'up', 'sink reconnects');
    await broker.restart();
    await produce(250);

    const eventIds = (): string[] => subscriber.json<AlertEvent>().map((a) => a.eventId);
    await subscriber.until(() => new Set(eventIds()).size >= 1000, 30_000, '1000 distinct alerts');
    const { order } = firstDeliveries(eventIds());
    expect(order).toEqual(Array.from({ length: 1000 }, (_, i) => `evt-${i}`));
    await waitFor(() => outbox.depth() === 0, 'outbox empty');
    expect(sink.health().state).toBe('up');
    expect(await ctx.metricValue('lineguard_mqtt_alerts_published_total')).toBeGreaterThanOrEqual(1000);
    const connects = await ctx.metricValue('lineguard_mqtt_connects_total', { client: 'mqtt-sink' });
    expect(connects).toBeGreaterThanOrEqual(3);
    // At-least-once, never a gap. The sink re-sends only what was in flight when a connection died (at most
    // maxInFlight per lost connection). The subscriber sees more duplicates than that: Mosquitto redelivers what it
    // had in flight to it when it restarted (DUP flag); subscribers de-duplicate on eventId.
    const sent = await broker.publishesFrom('lineguard-gw-test-test-alerts');
    expect(sent).toBeGreaterThanOrEqual(1000);
    expect(sent).toBeLessThanOrEqual(1000 + (connects - 1) * 50);
    // The payload is the AlertEvent as enqueued.
    expect(subscriber.json<AlertEvent>()[0]).toEqual(makeAlert(0));
    expect(subscriber.messages[0]!.topic).toBe('lineguard/gw-test/alerts/press-fault');
  });

  it('keeps a retained online status while connected and publishes offline on a clean stop', async () => {
    const { outbox, ctx } = open('status');
    const sink = new MqttAlertSink(sinkConfig({ statusTopic: 'plant/{gateway}/gateway-status' }), brokerConfig({ url: broker.url, ...fast }), ctx, outbox);
    cleanup.push(() => sink.stop());
    const t0 = Date.now();
    await sink.start(new AbortController().signal);
    const watcher = await Collector.connect(broker.url, ['plant/gw-test/gateway-status']);
    cleanup.push(() => watcher.close());
    await watcher.until(() => watcher.messages.length >= 1, 5000, 'retained online status');
    const online = watcher.json<GatewayStatus>()[0]!;
    expect(online).toMatchObject({ schema: 1, gateway: 'gw-test', state: 'online' });
    expect(online.ts).toBeGreaterThanOrEqual(t0);
    expect(watcher.messages[0]!.retain).toBe(true);

    const stopStarted = Date.now();
    await sink.stop();
    expect(Date.now() - stopStarted).toBeLessThan(5000);
    await watcher.until(() => watcher.messages.length >= 2, 5000, 'offline status');
    expect(watcher.json<GatewayStatus>()[1]).toMatchObject({ gateway: 'gw-test', state: 'offline', reason: 'stopped' });

    const late = await Collector.connect(broker.url, ['plant/gw-test/gateway-status']);
    cleanup.push(() => late.close());
    await late.until(() => late.messages.length >= 1, 5000, 'retained offline status');
    expect(late.messages[0]!.retain).toBe(true);
    expect(late.json<GatewayStatus>()[0]).toMatchObject({ state: 'offline', reason: 'stopped' });
    expect(sink.health().state).toBe('stopped');
  });

  it('drains a backlog left from before the start, over MQTT 5 with a persistent session', async () => {
    const { outbox, ctx } = open('v5');
    for (let i = 0; i < 100; i++) outbox.enqueue(makeModelAlert(i, i % 2 ? 'odd' : 'even'));
    const subscriber = await Collector.connect(broker.url, ['v5/#'], { protocolVersion: 5 });
    cleanup.push(() => subscriber.close());
    const sink = new MqttAlertSink(
      sinkConfig({ topic: 'v5/{gateway}/{model}/{severity}', maxInFlight: 7 }),
      brokerConfig({ url: broker.url, protocolVersion: 5, cleanSession: false, ...fast }),
      ctx,
      outbox,
    );
    cleanup.push(() => sink.stop());
    await sink.start(new AbortController().signal);
    await subscriber.until(() => subscriber.messages.length >= 100, 10_000, '100 alerts');
    expect(subscriber.json<AlertEvent>().map((a) => a.eventId)).toEqual(Array.from({ length: 100 }, (_, i) => `evt-${i}`));
    expect(subscriber.messages[1]!.topic).toBe('v5/gw-test/odd/major');
    await waitFor(() => outbox.depth() === 0, 'outbox empty');
  });

  it('starts without a broker, keeps alerts in the outbox, and delivers them when the broker comes', async () => {
    const { outbox, ctx } = open('late');
    await broker.stop();
    const sink = new MqttAlertSink(sinkConfig(), brokerConfig({ url: broker.url, ...fast }), ctx, outbox);
    cleanup.push(() => sink.stop());
    await sink.start(new AbortController().signal);
    for (let i = 0; i < 20; i++) outbox.enqueue(makeAlert(i));
    const health = sink.health();
    expect(health.state).toBe('down');
    expect(health.reason).toMatch(/ECONNREFUSED.*20 alert\(s\) wait in the outbox/);
    await new Promise((r) => setTimeout(r, 300));
    expect(outbox.depth()).toBe(20);
    await broker.start();
    await waitFor(() => outbox.depth() === 0, 'backlog drained after the broker came');
    expect(sink.health().state).toBe('up');
  });
});
