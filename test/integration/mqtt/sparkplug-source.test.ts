import { randomUUID } from 'node:crypto';
import sparkplug from 'sparkplug-payload';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttSource } from '../../../src/connectors/mqtt/index.js';
import { Collector } from '../../fixtures/mqtt/collector.js';
import { testContext, type TestContext } from '../../fixtures/mqtt/component-context.js';
import { brokerConfig, sourceConfig } from '../../fixtures/mqtt/config-with-defaults.js';
import { EdgeNode, type BirthMetric, type Message } from '../../fixtures/mqtt/sparkplug-edge-node.js';
import { brokerUrl } from '../../support/mosquitto.js';

const spB = sparkplug.get('spBv1.0')!;
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const T0 = 1_714_564_800_000;
const NODE: BirthMetric[] = [
  { name: 'Supply/Voltage', alias: 1, type: 'Float', value: 24.5 },
  { name: 'Uptime', alias: 2, type: 'UInt32', value: 4_000_000_000 },
];
const PRESS: BirthMetric[] = [
  { name: 'Torque', alias: 10, type: 'Double', value: 40.5 },
  { name: 'Running', alias: 11, type: 'Boolean', value: true },
  { name: 'Recipe', alias: 12, type: 'String', value: 'R-7' },
];

async function setup(requestRebirth: boolean): Promise<{ ctx: TestContext; source: MqttSource; edge: EdgeNode; edgeClient: Collector; send(m: Message): Promise<void> }> {
  const group = `lgtest-${randomUUID().slice(0, 8)}`;
  const ctx = testContext();
  cleanup.push(() => ctx.dispose());
  const source = new MqttSource(
    sourceConfig({ name: 'spb', format: 'sparkplug', topics: [`spBv1.0/${group}/#`], sparkplug: { requestRebirth, rebirthMinIntervalMs: 1000 } }),
    brokerConfig({ url: brokerUrl(), cleanSession: true }),
    ctx,
  );
  cleanup.push(() => source.stop());
  await source.start(new AbortController().signal);
  const edge = new EdgeNode(group, 'edge1', 3);
  // The edge node listens for its commands, as a real one does.
  const edgeClient = await Collector.connect(brokerUrl(), [`spBv1.0/${group}/NCMD/edge1`]);
  cleanup.push(() => edgeClient.close());
  const end = Date.now() + 10_000;
  while (source.health().state !== 'up') {
    if (Date.now() > end) throw new Error(JSON.stringify(source.health()));
    await new Promise((r) => setTimeout(r, 20));
  }
  return { ctx, source, edge, edgeClient, send: (m) => edgeClient.client.publishAsync(m.topic, m.payload, { qos: 1 }).then(() => undefined) };
}

describe('MqttSource (Sparkplug B)', () => {
  it('produces the right TagSamples from births and aliased data, node and device', async () => {
    const { ctx, source, edge, send } = await setup(false);
    await send(edge.nbirth(NODE, T0));
    await send(edge.dbirth('press1', PRESS, T0));
    await send(edge.data(undefined, [{ alias: 1, field: { floatValue: 23.75 }, ts: T0 + 100 }], T0 + 100));
    await send(edge.data('press1', [
      { alias: 10, field: { doubleValue: 41.25 }, ts: T0 + 200 },
      { alias: 11, field: { booleanValue: false }, ts: T0 + 201 },
    ], T0 + 200));
    const samples = await ctx.waitForSamples(8);
    const group = edge.group;
    expect(samples.map((s) => [s.tag, s.value, s.ts, s.quality, s.source])).toEqual([
      [`${group}.edge1.Supply/Voltage`, 24.5, T0, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.Uptime`, 4_000_000_000, T0, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.press1.Torque`, 40.5, T0, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.press1.Running`, true, T0, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.press1.Recipe`, 'R-7', T0, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.Supply/Voltage`, 23.75, T0 + 100, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.press1.Torque`, 41.25, T0 + 200, 'good', 'mqtt-source/spb'],
      [`${group}.edge1.press1.Running`, false, T0 + 201, 'good', 'mqtt-source/spb'],
    ]);
    expect(source.health().details).toMatchObject({ sparkplugNodesOnline: 1, sparkplugNodes: [{ node: `${group}/edge1`, devices: ['press1'] }] });

    await send(edge.ndeath());
    const end = Date.now() + 5000;
    while ((source.health().details?.sparkplugNodesOnline as number) !== 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(source.health().details?.sparkplugNodesOnline).toBe(0);
    expect(await ctx.metricValue('lineguard_mqtt_sparkplug_events_total', { source: 'spb', event: 'node_death' })).toBe(1);
  });

  it('data before birth: dropped, a rebirth requested by NCMD, and ingested after the edge node answers', async () => {
    const { ctx, edge, edgeClient, send } = await setup(true);
    // The gateway joined late: the edge node's NBIRTH went out before it subscribed.
    edge.nbirth(NODE, T0);
    await send(edge.data(undefined, [{ alias: 1, field: { floatValue: 1 } }], T0 + 1));
    await edgeClient.until(() => edgeClient.messages.length >= 1, 5000, 'a rebirth request');
    const cmd = spB.decodePayload(edgeClient.messages[0]!.payload);
    expect(edgeClient.messages[0]!.topic).toBe(`spBv1.0/${edge.group}/NCMD/edge1`);
    expect(cmd.metrics).toMatchObject([{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }]);
    expect(ctx.samples).toEqual([]);
    expect(await ctx.metricValue('lineguard_mqtt_dropped_messages_total', { source: 'spb', reason: 'no_birth' })).toBe(1);

    // The edge node answers the rebirth request, as the spec requires.
    await send(edge.nbirth(NODE, T0 + 10));
    await send(edge.data(undefined, [{ alias: 2, field: { intValue: 5 } }], T0 + 20));
    const samples = await ctx.waitForSamples(3);
    expect(samples.map((s) => [s.tag.split('.').slice(1).join('.'), s.value])).toEqual([
      ['edge1.Supply/Voltage', 24.5], ['edge1.Uptime', 4_000_000_000], ['edge1.Uptime', 5],
    ]);
    expect(await ctx.metricValue('lineguard_mqtt_sparkplug_rebirth_requests_total', { source: 'spb' })).toBe(1);
  });

  it('without requestRebirth, data before birth is dropped and counted but no command is sent', async () => {
    const { ctx, edge, edgeClient, send } = await setup(false);
    await send(edge.data(undefined, [{ alias: 1, field: { floatValue: 1 } }]));
    await send(edge.data('press1', [{ alias: 10, field: { doubleValue: 1 } }]));
    const end = Date.now() + 5000;
    while ((await ctx.metricValue('lineguard_mqtt_dropped_messages_total', { source: 'spb', reason: 'no_birth' })) < 2) {
      if (Date.now() > end) throw new Error('drops not counted');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(edgeClient.messages).toEqual([]);
    expect(ctx.logLines.some((l) => String(l.msg).includes('requestRebirth is off'))).toBe(true);
  });
});
