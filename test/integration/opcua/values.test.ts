import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OpcuaSource } from '../../../src/connectors/opcua/index.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { makeContext, metricValue, serverConfig, waitFor, type TestContext } from './harness.js';

let server: OpcuaTestServer;

beforeAll(async () => {
  server = await OpcuaTestServer.start({
    securityModes: ['None'],
    variables: [
      { name: 'Temperature', dataType: 'Double', value: 20.5 },
      { name: 'Count', dataType: 'Int32', value: 1 },
      { name: 'Big', dataType: 'Int64', value: -5_000_000_000 },
      { name: 'Running', dataType: 'Boolean', value: true },
      { name: 'Recipe', dataType: 'String', value: 'A1' },
      { name: 'Pressure', dataType: 'Double', value: 10, euRange: { low: 0, high: 200 } },
      { name: 'Level', dataType: 'Double', value: 10 },
      { name: 'Vector', dataType: 'Double', value: [1.5, 2.5, 3.5] },
      { name: 'Blob', dataType: 'ByteString', value: Buffer.from('xyz') },
      { name: 'Polled', dataType: 'Double', value: 7 },
    ],
  });
}, 60_000);

afterAll(async () => {
  await server?.dispose();
});

let t: TestContext;
let source: OpcuaSource | undefined;

afterEach(async () => {
  await source?.stop();
  source = undefined;
  t?.cleanup();
});

const valuesOf = (tag: string): Array<number | boolean | string> => t.samples.filter((s) => s.tag === tag).map((s) => s.value);

describe('OpcuaSource values', () => {
  it('publishes every scalar type with the source timestamp and the quality of the StatusCode', async () => {
    t = makeContext();
    const sourceTs = new Date('2024-05-01T10:00:00.123Z');
    server.setValue('Temperature', 21.25, { sourceTimestamp: sourceTs });
    source = new OpcuaSource(serverConfig(server.endpoint, [
      { tag: 'temp', nodeId: server.stableNodeId('Temperature') },
      { tag: 'count', nodeId: server.nodeId('Count') },
      { tag: 'big', nodeId: server.stableNodeId('Big') },
      { tag: 'running', nodeId: server.stableNodeId('Running') },
      { tag: 'recipe', nodeId: server.stableNodeId('Recipe') },
    ]), t.ctx);
    await source.start(new AbortController().signal);
    expect(source.health().state).toBe('up');
    await waitFor(() => ['temp', 'count', 'big', 'running', 'recipe'].every((tag) => valuesOf(tag).length > 0), 'initial values');

    const temp = t.samples.find((s) => s.tag === 'temp')!;
    expect(temp).toMatchObject({ value: 21.25, ts: sourceTs.getTime(), quality: 'good', statusName: 'Good', statusCode: 0, source: 'opcua/plc' });
    expect(valuesOf('count')[0]).toBe(1);
    expect(valuesOf('big')[0]).toBe(-5_000_000_000);
    expect(valuesOf('running')[0]).toBe(true);
    expect(valuesOf('recipe')[0]).toBe('A1');

    const failedAt = new Date(Date.now() - 1000);
    server.setValue('Temperature', 0, { status: 'BadSensorFailure', sourceTimestamp: failedAt });
    await waitFor(() => t.samples.some((s) => s.tag === 'temp' && s.quality === 'bad'), 'bad-quality sample');
    const bad = t.samples.find((s) => s.tag === 'temp' && s.quality === 'bad')!;
    expect(bad).toMatchObject({ quality: 'bad', statusName: 'BadSensorFailure', ts: failedAt.getTime() });
    expect(bad.statusCode! >>> 0).toBe(0x808c0000);

    server.setValue('Temperature', 22, { status: 'UncertainLastUsableValue' });
    await waitFor(() => t.samples.some((s) => s.tag === 'temp' && s.quality === 'uncertain'), 'uncertain sample');
    expect(t.samples.find((s) => s.quality === 'uncertain')).toMatchObject({ value: 22, statusName: 'UncertainLastUsableValue' });

    // A PLC without a clock sends DateTime 0 as the source timestamp: the server's timestamp stands in for it.
    const before = Date.now();
    server.setValue('Temperature', 23, { sourceTimestamp: new Date(Date.UTC(1601, 0, 1)) });
    await waitFor(() => valuesOf('temp').includes(23), 'value without a source timestamp');
    const clockless = t.samples.find((s) => s.tag === 'temp' && s.value === 23)!;
    expect(clockless.ts).toBeGreaterThanOrEqual(before - 1000);
    expect(clockless.ts).toBeLessThanOrEqual(Date.now());

    expect(await metricValue(t.registry, 'lineguard_opcua_bad_quality_samples_total', { server: 'plc', quality: 'bad' })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(t.registry, 'lineguard_opcua_notifications_total', { server: 'plc' })).toBe(t.samples.length);
    expect(await metricValue(t.registry, 'lineguard_opcua_session_state', { server: 'plc', state: 'connected' })).toBe(1);
    server.setValue('Temperature', 20.5);
  });

  it('applies absolute and percent deadbands in the server', async () => {
    t = makeContext();
    server.setValue('Level', 10);
    server.setValue('Pressure', 10);
    source = new OpcuaSource(serverConfig(server.endpoint, [
      { tag: 'level', nodeId: server.stableNodeId('Level'), deadband: { type: 'absolute', value: 1 } },
      // 5 % of the EURange 0..200 = 10
      { tag: 'pressure', nodeId: server.stableNodeId('Pressure'), deadband: { type: 'percent', value: 5 } },
    ]), t.ctx);
    await source.start(new AbortController().signal);
    await waitFor(() => valuesOf('level').length === 1 && valuesOf('pressure').length === 1, 'initial values');
    expect(source.health().state).toBe('up');
    for (const [level, pressure] of [[10.4, 14], [10.8, 18], [11.5, 25], [11.9, 27], [13, 40]] as const) {
      server.setValue('Level', level);
      server.setValue('Pressure', pressure);
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor(() => valuesOf('level').length >= 3 && valuesOf('pressure').length >= 3, 'values beyond the deadband');
    await new Promise((r) => setTimeout(r, 300));
    expect(valuesOf('level')).toEqual([10, 11.5, 13]);
    expect(valuesOf('pressure')).toEqual([10, 25, 40]);
  });

  it('an unknown node id degrades only its own tag, and it recovers by itself once the node exists', async () => {
    t = makeContext();
    source = new OpcuaSource(serverConfig(server.endpoint, [
      { tag: 'temp', nodeId: server.stableNodeId('Temperature') },
      { tag: 'ghost', nodeId: server.stableNodeId('DoesNotExist') },
      { tag: 'wrong-ns', nodeId: 'nsu=urn:nobody;s=Temperature' },
      { tag: 'count', nodeId: server.stableNodeId('Count') },
    ]), t.ctx);
    await source.start(new AbortController().signal);
    await waitFor(() => valuesOf('temp').length > 0 && valuesOf('count').length > 0, 'values of the good tags');
    const health = source.health();
    expect(health.state).toBe('degraded');
    expect(health.details?.degradedTagCount).toBe(2);
    const degraded = health.details?.degradedTags as Array<{ tag: string; reason: string }>;
    expect(degraded.find((d) => d.tag === 'ghost')?.reason).toContain('BadNodeIdUnknown');
    expect(degraded.find((d) => d.tag === 'wrong-ns')?.reason).toContain('namespace URI "urn:nobody" is not on the server');
    expect(health.reason).toMatch(/2 of 4 tags degraded/);
    expect(await metricValue(t.registry, 'lineguard_opcua_degraded_tags', { server: 'plc' })).toBe(2);
    const warnings = t.logs.lines.filter((l) => l.msg === `tag degraded: ${degraded.find((d) => d.tag === 'ghost')!.reason}`);
    expect(warnings).toHaveLength(1);

    // Other tags keep flowing.
    server.setValue('Count', 42);
    await waitFor(() => valuesOf('count').includes(42), 'count after degradation');
    expect(t.samples.some((s) => s.tag === 'ghost' || s.tag === 'wrong-ns')).toBe(false);

    // Retried every retryDegradedMs (1 s here), still failing: logged once only.
    await new Promise((r) => setTimeout(r, 2500));
    expect(t.logs.lines.filter((l) => String(l.msg).startsWith('tag degraded') && l.tag === 'ghost')).toHaveLength(1);
    expect(source.health().details?.monitoredItems).toBe(2);

    // The node appears: the next retry creates the item, values flow, the tag is no longer degraded.
    server.addVariable({ name: 'DoesNotExist', dataType: 'Double', value: 3.25 });
    await waitFor(() => valuesOf('ghost').includes(3.25), 'value of the recovered tag', 5000);
    expect(source.health().details?.degradedTagCount).toBe(1);
    expect(source.health().details?.monitoredItems).toBe(3);
    expect(t.logs.messages().filter((m) => m.startsWith('tag recovered'))).toHaveLength(1);
  });

  it('reads one element of an array with arrayIndex and refuses arrays without it and unsupported types', async () => {
    t = makeContext();
    source = new OpcuaSource(serverConfig(server.endpoint, [
      { tag: 'second', nodeId: server.stableNodeId('Vector'), arrayIndex: 1 },
      { tag: 'whole', nodeId: server.stableNodeId('Vector') },
      { tag: 'blob', nodeId: server.stableNodeId('Blob') },
    ]), t.ctx);
    await source.start(new AbortController().signal);
    await waitFor(() => valuesOf('second').length > 0 && (source!.health().details?.degradedTagCount as number) === 2, 'element and refusals');
    expect(valuesOf('second')).toEqual([2.5]);
    const degraded = source.health().details?.degradedTags as Array<{ tag: string; reason: string }>;
    expect(degraded.find((d) => d.tag === 'whole')?.reason).toMatch(/array \(3 elements\): set arrayIndex/);
    expect(degraded.find((d) => d.tag === 'blob')?.reason).toMatch(/ByteString are not supported/);
    server.setValue('Vector', [1.5, 9.5, 3.5]);
    await waitFor(() => valuesOf('second').includes(9.5), 'changed element');
  });

  it('polls tags in mode poll and publishes only changes', async () => {
    t = makeContext();
    server.setValue('Polled', 7, { sourceTimestamp: new Date(Date.now() - 5000) });
    source = new OpcuaSource(serverConfig(server.endpoint, [
      { tag: 'polled', nodeId: server.stableNodeId('Polled'), mode: 'poll', pollIntervalMs: 100 },
      { tag: 'polled-ghost', nodeId: server.stableNodeId('Nope'), mode: 'poll', pollIntervalMs: 100 },
    ]), t.ctx);
    await source.start(new AbortController().signal);
    await waitFor(() => valuesOf('polled').length > 0, 'first polled value');
    await new Promise((r) => setTimeout(r, 500));
    expect(valuesOf('polled')).toEqual([7]);
    server.setValue('Polled', 8);
    await waitFor(() => valuesOf('polled').includes(8), 'changed polled value');
    const health = source.health();
    expect(health.details?.polledTags).toBe(2);
    expect(health.details?.monitoredItems).toBe(0);
    expect((health.details?.degradedTags as Array<{ tag: string; reason: string }>)[0]).toMatchObject({ tag: 'polled-ghost', reason: 'the server reports BadNodeIdUnknown' });
  });
});
