import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttSource } from '../../../src/connectors/mqtt/index.js';
import { brokerConfig, sourceConfig } from '../../fixtures/mqtt/config-with-defaults.js';
import { Collector } from '../../fixtures/mqtt/collector.js';
import { testContext, type TestContext } from '../../fixtures/mqtt/component-context.js';
import { brokerUrl, freePort, Mosquitto } from '../../support/mosquitto.js';

const signal = new AbortController().signal;
const fast = { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } };
const cleanup: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function startSource(ctx: TestContext, source: MqttSource): Promise<MqttSource> {
  cleanup.push(() => source.stop());
  await source.start(signal);
  return source;
}

async function publisher(url: string): Promise<Collector> {
  // A collector subscribed to nothing relevant is a handy publishing client.
  const c = await Collector.connect(url, [`lgtest/unused/${randomUUID()}`]);
  cleanup.push(() => c.close());
  return c;
}

function context(): TestContext {
  const ctx = testContext();
  cleanup.push(() => ctx.dispose());
  return ctx;
}

async function waitUp(source: MqttSource): Promise<void> {
  const end = Date.now() + 10_000;
  while (source.health().state !== 'up') {
    if (Date.now() > end) throw new Error(`source not up: ${JSON.stringify(source.health())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MqttSource (json) against the shared broker', () => {
  it('turns JSON messages into the right TagSamples', async () => {
    const prefix = `lgtest/${randomUUID()}`;
    const ctx = context();
    const source = await startSource(ctx, new MqttSource(
      sourceConfig({
        name: 'vib',
        topics: [`${prefix}/+/+/telemetry`],
        values: [{ tag: '{3}.{4}.rms', pointer: '/rms' }, { tag: '{3}.{4}.temp', pointer: '/t/value' }],
        timestamp: { pointer: '/ts', format: 'epoch_ms' },
      }),
      brokerConfig({ url: brokerUrl(), cleanSession: true, ...fast }),
      ctx,
    ));
    await waitUp(source);
    const pub = await publisher(brokerUrl());
    await pub.client.publishAsync(`${prefix}/press1/axis-x/telemetry`, JSON.stringify({ rms: 0.5, t: { value: 40.25 }, ts: 1_714_564_800_000 }), { qos: 1 });
    await pub.client.publishAsync(`${prefix}/press2/axis-y/telemetry`, JSON.stringify({ rms: 0.75, t: { value: 41 }, ts: 1_714_564_800_100 }), { qos: 1 });
    const samples = await ctx.waitForSamples(4);
    expect(samples).toEqual([
      { tag: 'press1.axis-x.rms', value: 0.5, ts: 1_714_564_800_000, quality: 'good', source: 'mqtt-source/vib' },
      { tag: 'press1.axis-x.temp', value: 40.25, ts: 1_714_564_800_000, quality: 'good', source: 'mqtt-source/vib' },
      { tag: 'press2.axis-y.rms', value: 0.75, ts: 1_714_564_800_100, quality: 'good', source: 'mqtt-source/vib' },
      { tag: 'press2.axis-y.temp', value: 41, ts: 1_714_564_800_100, quality: 'good', source: 'mqtt-source/vib' },
    ]);
    expect(await ctx.metricValue('lineguard_mqtt_samples_total', { source: 'vib' })).toBe(4);
    expect(await ctx.metricValue('lineguard_mqtt_connected', { client: 'mqtt-source/vib' })).toBe(1);
    await source.stop();
    expect(source.health().state).toBe('stopped');
    expect((await ctx.metrics.getSingleMetric('lineguard_mqtt_samples_total')!.get()).values).toEqual([]);
  });

  it('takes plain-number payloads, over MQTT 5', async () => {
    const prefix = `lgtest/${randomUUID()}`;
    const ctx = context();
    const source = await startSource(ctx, new MqttSource(
      sourceConfig({ name: 'plain', topics: [`${prefix}/#`], values: [{ tag: 'line.{3}', type: 'number' }] }),
      brokerConfig({ url: brokerUrl(), protocolVersion: 5, cleanSession: true }),
      ctx,
    ));
    await waitUp(source);
    const pub = await publisher(brokerUrl());
    const before = Date.now();
    await pub.client.publishAsync(`${prefix}/speed`, '1480', { qos: 1 });
    const [sample] = await ctx.waitForSamples(1);
    expect(sample).toMatchObject({ tag: 'line.speed', value: 1480, quality: 'good' });
    expect(sample!.ts).toBeGreaterThanOrEqual(before);
  });
});

describe('MqttSource (json) against a private broker', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await Mosquitto.start({ users: { lineguard: 'pw-Zq81!secret' } });
  });
  afterAll(async () => {
    await broker.dispose();
  });
  const auth = { username: 'lineguard', password: 'pw-Zq81!secret' };

  it('1,000 malformed payloads mixed with 1,000 good ones: no crash, every good sample ingested, drops counted', async () => {
    const ctx = context();
    const source = await startSource(ctx, new MqttSource(
      sourceConfig({
        name: 'mixed',
        topics: ['mixed/+'],
        values: [{ tag: 'dev.{2}.v', pointer: '/v', type: 'number' }],
        timestamp: { pointer: '/ts', format: 'epoch_ms' },
        maxPayloadBytes: 1024,
      }),
      brokerConfig({ url: broker.url, ...auth, cleanSession: true }),
      ctx,
    ));
    await waitUp(source);
    const pub = await publisher(broker.url.replace('mqtt://', `mqtt://${auth.username}:${encodeURIComponent(auth.password)}@`));
    const bad: Array<string | Buffer> = [
      '{"v": 1, "ts": ',
      Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]),
      JSON.stringify({ v: { nested: true }, ts: 1 }),
      JSON.stringify({ x: 1, ts: 1 }),
      JSON.stringify({ v: 1, ts: 'yesterday' }),
      JSON.stringify({ v: 1, ts: 1, pad: 'x'.repeat(2000) }),
      '',
      'null',
      JSON.stringify({ v: 'high', ts: 1 }),
      '[1,2,3]',
    ];
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < 1000; i++) {
      sends.push(pub.client.publishAsync(`mixed/d${i % 7}`, JSON.stringify({ v: i, ts: 1_700_000_000_000 + i }), { qos: 1 }));
      sends.push(pub.client.publishAsync(`mixed/d${i % 7}`, bad[i % bad.length]!, { qos: 1 }));
      if (sends.length >= 100) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    const samples = await ctx.waitForSamples(1000, 20_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(samples).toHaveLength(1000);
    expect(samples.map((s) => s.value)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(samples.every((s, i) => s.ts === 1_700_000_000_000 + i && s.tag === `dev.d${i % 7}.v`)).toBe(true);

    const dropped = async (name: string, reason: string): Promise<number> => ctx.metricValue(name, { source: 'mixed', reason });
    expect(await dropped('lineguard_mqtt_dropped_messages_total', 'not_json')).toBe(300);
    expect(await dropped('lineguard_mqtt_dropped_messages_total', 'bad_timestamp')).toBe(300);
    expect(await dropped('lineguard_mqtt_dropped_messages_total', 'too_large')).toBe(100);
    expect(await dropped('lineguard_mqtt_dropped_values_total', 'wrong_type')).toBe(200);
    expect(await dropped('lineguard_mqtt_dropped_values_total', 'missing_field')).toBe(100);
    expect(source.health().state).toBe('up');
    // Rate-limited: a handful of lines, not a thousand.
    const dropLines = ctx.logLines.filter((l) => String(l.msg).startsWith('dropped'));
    expect(dropLines.length).toBeGreaterThan(0);
    expect(dropLines.length).toBeLessThan(20);
    expect(ctx.logText()).not.toContain(auth.password);
  });

  it('a persistent session keeps QoS 1 data published while the gateway was away', async () => {
    const cfg = sourceConfig({ name: 'persist', topics: ['persist/+'], values: [{ tag: 'p.{2}', pointer: '/v' }] });
    const brokerCfg = brokerConfig({ url: broker.url, ...auth, cleanSession: false, clientId: `lg-${randomUUID()}` });
    const ctx1 = context();
    const first = new MqttSource(cfg, brokerCfg, ctx1);
    await startSource(ctx1, first);
    await waitUp(first);
    await first.stop();

    const pub = await publisher(broker.url.replace('mqtt://', `mqtt://${auth.username}:${encodeURIComponent(auth.password)}@`));
    for (let i = 0; i < 50; i++) await pub.client.publishAsync('persist/a', JSON.stringify({ v: i }), { qos: 1 });

    const ctx2 = context();
    await startSource(ctx2, new MqttSource(cfg, brokerCfg, ctx2));
    const samples = await ctx2.waitForSamples(50);
    expect(samples.map((s) => s.value)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('reports a refused login as down, keeps retrying, and never logs the password', async () => {
    const ctx = context();
    const source = await startSource(ctx, new MqttSource(
      sourceConfig({ name: 'badauth', topics: ['x/#'], values: [{ tag: 'x' }] }),
      brokerConfig({ url: broker.url, username: 'lineguard', password: 'wrong-Pw-4711', ...fast }),
      ctx,
    ));
    const health = source.health();
    expect(health.state).toBe('down');
    expect(health.reason).toMatch(/Not authorized|Bad username or password/i);
    // It keeps retrying (with backoff) rather than giving up.
    const end = Date.now() + 10_000;
    while ((await ctx.metricValue('lineguard_mqtt_connection_errors_total', { client: 'mqtt-source/badauth' })) < 3) {
      if (Date.now() > end) throw new Error('the source stopped retrying');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(ctx.logText()).not.toContain('wrong-Pw-4711');
    expect(JSON.stringify(source.health())).not.toContain('wrong-Pw-4711');
  });
});

describe('MqttSource without a broker', () => {
  it('starts anyway, reports down, and connects by itself when the broker appears', async () => {
    const port = await freePort();
    const ctx = context();
    const t0 = Date.now();
    const source = await startSource(ctx, new MqttSource(
      sourceConfig({ name: 'later', topics: ['later/#'], values: [{ tag: 'later' }] }),
      brokerConfig({ url: `mqtt://127.0.0.1:${port}`, cleanSession: true, ...fast }),
      ctx,
    ));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(source.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/ECONNREFUSED/) });
    const late = await Mosquitto.start({ port });
    cleanup.push(() => late.dispose());
    await waitUp(source);
    const pub = await publisher(late.url);
    await pub.client.publishAsync('later/x', '7', { qos: 1 });
    expect((await ctx.waitForSamples(1))[0]).toMatchObject({ tag: 'later', value: 7 });
  });
});

describe('MqttSource with a broker URL mqtt.js cannot use', () => {
  it('starts, reports down with the reason and keeps the process alive (no unhandled rejection)', async () => {
    const ctx = context();
    const source = new MqttSource(
      sourceConfig({ name: 'badport', topics: ['badport/#'], values: [{ tag: 'badport' }] }),
      // Passes the schema pattern; mqtt.connect throws synchronously on it.
      brokerConfig({ url: 'mqtt://127.0.0.1:99999', ...fast }),
      ctx,
    );
    cleanup.push(() => source.stop());
    const started = await Promise.race([source.start(signal).then(() => 'started'), new Promise((r) => setTimeout(() => r('hung'), 5000))]);
    expect(started).toBe('started');
    expect(source.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/99999.*Port should be >= 0 and < 65536/) });
    // It retries like any other failed attempt; each attempt fails the same way, and is counted.
    const end = Date.now() + 10_000;
    while ((await ctx.metricValue('lineguard_mqtt_connection_errors_total', { client: 'mqtt-source/badport' })) < 2) {
      if (Date.now() > end) throw new Error('the source stopped retrying');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
