import { randomUUID } from 'node:crypto';
import sparkplug from 'sparkplug-payload';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttSource } from '../../../src/connectors/mqtt/index.js';
import { MAX_TAGS_PER_SOURCE } from '../../../src/connectors/mqtt/tag-admission.js';
import { BAD_NO_COMMUNICATION } from '../../../src/core/connection-markers.js';
import { Collector } from '../../fixtures/mqtt/collector.js';
import { testContext, type TestContext } from '../../fixtures/mqtt/component-context.js';
import { brokerConfig, sourceConfig } from '../../fixtures/mqtt/config-with-defaults.js';
import { EdgeNode } from '../../fixtures/mqtt/sparkplug-edge-node.js';
import { brokerUrl } from '../../support/mosquitto.js';

/** Issue 13: tags and device state are bounded; Sparkplug deaths mark tags stale; requestRebirth is on by default. */

const spB = sparkplug.get('spBv1.0')!;
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function started(source: MqttSource, ctx: TestContext): Promise<void> {
  cleanup.push(() => ctx.dispose());
  cleanup.push(() => source.stop());
  await source.start(new AbortController().signal);
  await until('the source to be up', () => source.health().state === 'up');
}

async function client(topics: string[]): Promise<Collector> {
  const c = await Collector.connect(brokerUrl(), topics);
  cleanup.push(() => c.close());
  return c;
}

describe('MqttSource: tags are bounded', () => {
  it(`refuses the tags beyond ${MAX_TAGS_PER_SOURCE} and names too long, counted and logged at a limited rate`, async () => {
    const prefix = `lgtest/${randomUUID()}`;
    const ctx = testContext();
    const source = new MqttSource(
      sourceConfig({ name: 'flood', topics: [`${prefix}/#`], qos: 0, values: [{ tag: 'flood.{3}', pointer: '' }] }),
      brokerConfig({ url: brokerUrl(), cleanSession: true }),
      ctx,
    );
    await started(source, ctx);
    const pub = await client([`lgtest/unused/${randomUUID()}`]);
    const total = MAX_TAGS_PER_SOURCE + 200;
    for (let i = 0; i < total; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, total - i) }, (_, k) => pub.client.publishAsync(`${prefix}/t${i + k}`, '1', { qos: 1 })));
    }
    await pub.client.publishAsync(`${prefix}/${'x'.repeat(300)}`, '1', { qos: 1 });
    const refused = (reason: string) => ctx.metricValue('lineguard_mqtt_dropped_values_total', { source: 'flood', reason });
    await until('200 tags refused', async () => (await refused('too_many_tags')) === 200 && (await refused('tag_name_too_long')) === 1, 30_000);
    expect(new Set(ctx.samples.map((s) => s.tag)).size).toBe(MAX_TAGS_PER_SOURCE);
    expect(source.health().details).toMatchObject({ tags: MAX_TAGS_PER_SOURCE, refusedTagSamples: 201 });
    // A known tag still passes.
    const before = ctx.samples.length;
    await pub.client.publishAsync(`${prefix}/t0`, '2', { qos: 1 });
    await until('a known tag to pass', () => ctx.samples.length > before);
    const lines = ctx.logLines.filter((l) => l.reason === 'too_many_tags');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(3);
  }, 60_000);
});

describe('MqttSource (Sparkplug B host)', () => {
  async function sparkplugSource(sparkplugOptions: Record<string, unknown> = {}) {
    const group = `lgtest-${randomUUID().slice(0, 8)}`;
    const ctx = testContext();
    const source = new MqttSource(
      sourceConfig({ name: 'spb-bounds', format: 'sparkplug', topics: [`spBv1.0/${group}/#`], sparkplug: sparkplugOptions }),
      brokerConfig({ url: brokerUrl(), cleanSession: true }),
      ctx,
    );
    await started(source, ctx);
    const edge = new EdgeNode(group, 'edge1', 1);
    const edgeClient = await client([`spBv1.0/${group}/NCMD/edge1`]);
    const send = (m: { topic: string; payload: Buffer }) => edgeClient.client.publishAsync(m.topic, m.payload, { qos: 1 });
    return { group, ctx, source, edge, edgeClient, send };
  }

  it('NDEATH and DDEATH publish a BadNoCommunication sample for every tag of the node or device', async () => {
    const { group, ctx, edge, send } = await sparkplugSource();
    await send(edge.nbirth([{ name: 'Voltage', alias: 1, type: 'Float', value: 24 }]));
    await send(edge.dbirth('press1', [{ name: 'Torque', alias: 10, type: 'Double', value: 40 }, { name: 'Running', alias: 11, type: 'Boolean', value: true }]));
    await send(edge.dbirth('press2', [{ name: 'Torque', alias: 20, type: 'Double', value: 41 }]));
    await ctx.waitForSamples(4);
    const markers = () => ctx.samples.filter((s) => s.statusCode === BAD_NO_COMMUNICATION);

    await send(edge.ddeath('press1'));
    await until('the DDEATH markers', () => markers().length === 2);
    expect(markers().map((s) => [s.tag, s.quality, s.statusName])).toEqual([
      [`${group}.edge1.press1.Torque`, 'bad', 'BadNoCommunication'],
      [`${group}.edge1.press1.Running`, 'bad', 'BadNoCommunication'],
    ]);

    await send(edge.ndeath());
    await until('the NDEATH markers', () => markers().length === 4);
    expect(markers().slice(2).map((s) => s.tag)).toEqual([`${group}.edge1.Voltage`, `${group}.edge1.press2.Torque`]);
    expect(markers().every((s) => s.quality === 'bad' && Number.isNaN(s.value))).toBe(true);
  });

  it('requestRebirth is on by default: data from a node whose birth the gateway missed gets an NCMD rebirth', async () => {
    const { edge, edgeClient, send } = await sparkplugSource();
    edge.nbirth([{ name: 'Voltage', alias: 1, type: 'Float', value: 24 }]);
    await send(edge.data(undefined, [{ alias: 1, field: { floatValue: 1 } }]));
    await edgeClient.until(() => edgeClient.messages.length >= 1, 5000, 'a rebirth request');
    expect(spB.decodePayload(edgeClient.messages[0]!.payload).metrics).toMatchObject([{ name: 'Node Control/Rebirth', value: true }]);
  });
});
