import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import type { AlertEvent } from '../../../src/core/alert.js';
import { MqttAlertSink, MqttSource } from '../../../src/connectors/mqtt/index.js';
import type { MqttBrokerConfig } from '../../../src/connectors/mqtt/config.js';
import { makeAlert } from '../../support/alert-event.js';
import { Collector } from '../../fixtures/mqtt/collector.js';
import { testContext, type TestContext } from '../../fixtures/mqtt/component-context.js';
import { brokerConfig, sinkConfig, sourceConfig, type Loose } from '../../fixtures/mqtt/config-with-defaults.js';
import { makeTestPki, Mosquitto, type TestPki } from '../../support/mosquitto.js';

let pki: TestPki;
let broker: Mosquitto;
const cleanup: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  pki = await makeTestPki();
  broker = await Mosquitto.start({
    tls: { caFile: pki.caFile, certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, requireCertificate: true },
  });
}, 60_000);
afterAll(async () => {
  await broker.dispose();
  rmSync(pki.dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function context(): TestContext {
  const ctx = testContext('gw-tls');
  cleanup.push(() => ctx.dispose());
  return ctx;
}

async function source(ctx: TestContext, broker: Loose<MqttBrokerConfig> & { url: string }): Promise<MqttSource> {
  const s = new MqttSource(
    sourceConfig({ name: 'tls', topics: ['tls/#'], values: [{ tag: 'tls.{2}' }] }),
    brokerConfig({ cleanSession: true, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 }, ...broker }),
    ctx,
  );
  cleanup.push(() => s.stop());
  await s.start(new AbortController().signal);
  return s;
}

const clientCert = () => ({ certFile: pki.clientCertFile, keyFile: pki.clientKeyFile });

describe('MQTT over TLS (certificates made with openssl)', () => {
  it('connects with the CA and a client certificate, and carries data both ways', async () => {
    const ctx = context();
    const s = await source(ctx, { url: broker.tlsUrl, tls: { caFile: pki.caFile, ...clientCert() } });
    expect(s.health()).toMatchObject({ state: expect.stringMatching(/up|degraded/) });

    const outbox = SqliteAlertOutbox.open(join(ctx.stateDir, 'outbox.db'));
    cleanup.push(() => outbox.close());
    const sink = new MqttAlertSink(sinkConfig(), brokerConfig({ url: broker.tlsUrl, tls: { caFile: pki.caFile, ...clientCert() } }), ctx, outbox);
    cleanup.push(() => sink.stop());
    await sink.start(new AbortController().signal);
    expect(sink.health().state).toBe('up');

    const plant = await Collector.connect(broker.tlsUrl, ['lineguard/gw-tls/alerts/#', 'tls/#'], {
      ca: readPem(pki.caFile), cert: readPem(pki.clientCertFile), key: readPem(pki.clientKeyFile),
    });
    cleanup.push(() => plant.close());
    outbox.enqueue(makeAlert(1));
    await plant.until(() => plant.json<AlertEvent>((t) => t.includes('/alerts/')).length === 1, 5000, 'the alert over TLS');
    await plant.client.publishAsync('tls/temp', '21', { qos: 1 });
    expect((await ctx.waitForSamples(1))[0]).toMatchObject({ tag: 'tls.temp', value: 21 });
  });

  it('resolves relative certificate paths under the state directory, and accepts the IP the certificate names', async () => {
    const ctx = context();
    mkdirSync(join(ctx.stateDir, 'pki'));
    for (const [from, to] of [[pki.caFile, 'ca.pem'], [pki.clientCertFile, 'client.pem'], [pki.clientKeyFile, 'client.key']] as const) {
      copyFileSync(from, join(ctx.stateDir, 'pki', to));
    }
    const s = await source(ctx, {
      url: `mqtts://127.0.0.1:${broker.tlsPort}`, tls: { caFile: 'pki/ca.pem', certFile: 'pki/client.pem', keyFile: 'pki/client.key' },
    });
    expect(s.health().state).not.toBe('down');
  });

  it('refuses a broker whose certificate does not name the expected server', async () => {
    const ctx = context();
    const s = await source(ctx, { url: broker.tlsUrl, tls: { caFile: pki.caFile, serverName: 'broker.plant.example', ...clientCert() } });
    expect(s.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/altnames|ERR_TLS_CERT_ALTNAME_INVALID/) });
  });

  it('refuses a broker certificate signed by a CA it does not trust', async () => {
    const ctx = context();
    const s = await source(ctx, { url: broker.tlsUrl, tls: { caFile: pki.otherCaFile, ...clientCert() } });
    expect(s.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/certificate|UNABLE_TO_VERIFY|SELF_SIGNED/i) });
  });

  it('is refused by a broker that requires a client certificate when it has none', async () => {
    const ctx = context();
    const s = await source(ctx, { url: broker.tlsUrl, tls: { caFile: pki.caFile } });
    expect(s.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/CERTIFICATE_REQUIRED|certificate required/) });
  });

  it('reports a missing certificate file as down and keeps retrying', async () => {
    const ctx = context();
    const missing = join(ctx.stateDir, 'no-such-ca.pem');
    const s = await source(ctx, { url: broker.tlsUrl, tls: { caFile: missing } });
    expect(s.health()).toMatchObject({ state: 'down', reason: expect.stringMatching(/cannot read TLS files.*ENOENT/) });
  });
});

function readPem(file: string): Buffer {
  return readFileSync(file);
}
