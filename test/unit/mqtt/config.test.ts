import { describe, expect, it } from 'vitest';
import { checkMqttConfig, MqttConfigSchema, type MqttConfig } from '../../../src/connectors/mqtt/config.js';
import { mqttConfig, schemaErrors } from '../../fixtures/mqtt/config-with-defaults.js';

function issues(raw: unknown): string[] {
  const cfg: MqttConfig = mqttConfig(raw);
  const out: string[] = [];
  checkMqttConfig(cfg, (path, message) => out.push(`${path.join('.')}: ${message}`));
  return out;
}

const broker = { name: 'site', url: 'mqtt://127.0.0.1:1883' };
const jsonSource = { name: 'vib', broker: 'site', topics: ['plant/+/vib'], values: [{ tag: '{2}.rms', pointer: '/rms' }] };

describe('MQTT config', () => {
  it('fills defaults and accepts a sane config without issues', () => {
    const cfg = mqttConfig({ brokers: [broker], sources: [jsonSource], alerts: { broker: 'site' } });
    expect(cfg.brokers[0]).toMatchObject({ protocolVersion: 4, cleanSession: false, keepaliveS: 30, reconnect: { initialDelayMs: 1000, maxDelayMs: 30000 } });
    expect(cfg.sources[0]).toMatchObject({ format: 'json', qos: 1, maxPayloadBytes: 262144, values: [{ type: 'auto' }] });
    expect(cfg.alerts).toEqual({
      broker: 'site', topic: 'lineguard/{gateway}/alerts/{model}', statusTopic: 'lineguard/{gateway}/status', maxInFlight: 100,
      maxUnackedAgeMs: 15_000, maxUndeliveredMs: 300_000,
    });
    expect(issues({ brokers: [broker], sources: [jsonSource], alerts: { broker: 'site' } })).toEqual([]);
  });

  it('rejects unknown keys and out-of-range values in the schema', () => {
    expect(schemaErrors(MqttConfigSchema, { brokers: [{ ...broker, passwrd: 'x' }] })).not.toEqual([]);
    expect(schemaErrors(MqttConfigSchema, { brokers: [broker], alerts: { broker: 'site', maxInFlight: 70000 } })).not.toEqual([]);
    expect(schemaErrors(MqttConfigSchema, { brokers: [{ ...broker, url: 'http://x' }] })).not.toEqual([]);
  });

  it('reports unknown brokers, duplicate names and json sources without values', () => {
    expect(issues({
      brokers: [broker, broker],
      sources: [jsonSource, { ...jsonSource, broker: 'nope' }, { name: 'raw', broker: 'site', topics: ['a/b'] }],
      alerts: { broker: 'elsewhere' },
    })).toEqual([
      'brokers.1.name: broker name "site" is used twice',
      'sources.1.name: source name "vib" is used twice',
      'sources.1.broker: broker "nope" is not defined in mqtt.brokers (defined: site)',
      'sources.2.values: a json source needs values: [{ tag: ..., pointer: ... }] saying which tags each message carries',
      'alerts.broker: broker "elsewhere" is not defined in mqtt.brokers (defined: site)',
    ]);
  });

  it('reports TLS settings on a plain URL, credentials in the URL and half-configured client certificates', () => {
    expect(issues({
      brokers: [
        { name: 'a', url: 'mqtt://10.0.0.1:1883', tls: { caFile: '/etc/ca.pem' } },
        { name: 'b', url: 'mqtts://user:secret@10.0.0.1:8883' },
        { name: 'c', url: 'mqtts://h:8883', password: 'x', tls: { certFile: 'c.pem' } },
        { name: 'd', url: 'mqtts://h:8883', reconnect: { initialDelayMs: 5000, maxDelayMs: 2000 } },
      ],
    })).toEqual([
      'brokers.0.tls: tls settings need an mqtts:// (or wss://) URL; mqtt:// connections are not encrypted',
      'brokers.1.url: put the user name and password in `username` and `password` (a secret), not in the URL',
      'brokers.2.password: a password needs a username',
      'brokers.2.tls.keyFile: a client certificate (certFile) needs its private key (keyFile)',
      'brokers.3.reconnect.maxDelayMs: maxDelayMs (2000) is below initialDelayMs (5000)',
    ]);
  });

  it('refuses broker URLs the schema pattern lets through but no client can connect to', () => {
    expect(issues({
      brokers: [
        { name: 'a', url: 'mqtt://10.0.0.1:99999' },
        { name: 'b', url: 'mqtts://broker.plant.local:0' },
        { name: 'c', url: 'mqtt://broker plant:1883' },
        { name: 'd', url: 'mqtt://[::1:1883' },
        { name: 'e', url: 'mqtt://broker:port' },
        { name: 'ok1', url: 'mqtt://[::1]:1883' },
        { name: 'ok2', url: 'wss://broker.plant.local/mqtt' },
        { name: 'ok3', url: 'mqtt://my_broker' },
      ],
    })).toEqual([
      'brokers.0.url: port 99999 is out of range: use 1 to 65535 (1883 for mqtt://, 8883 for mqtts://)',
      'brokers.1.url: port 0 is out of range: use 1 to 65535 (1883 for mqtt://, 8883 for mqtts://)',
      'brokers.2.url: not a valid URL: write <scheme>://<host>:<port>, e.g. mqtt://192.168.10.5:1883 (no spaces; IPv6 in brackets)',
      'brokers.3.url: not a valid URL: write <scheme>://<host>:<port>, e.g. mqtt://192.168.10.5:1883 (no spaces; IPv6 in brackets)',
      'brokers.4.url: not a valid URL: write <scheme>://<host>:<port>, e.g. mqtt://192.168.10.5:1883 (no spaces; IPv6 in brackets)',
    ]);
  });

  it('checks topic filters, tag templates against topic levels, and sparkplug-only options', () => {
    expect(issues({
      brokers: [broker],
      sources: [
        { name: 'a', broker: 'site', topics: ['plant/#/x', 'plant/a+'], values: [{ tag: 'x' }] },
        { name: 'b', broker: 'site', topics: ['plant/+'], values: [{ tag: '{3}.v' }, { tag: '{name}' }, { tag: 'k', pointer: '/a' }, { tag: 'k' }] },
        { name: 'c', broker: 'site', format: 'sparkplug', topics: ['plant/#'], values: [{ tag: 'x' }] },
        { name: 'd', broker: 'site', topics: ['plant/#'], values: [{ tag: '{9}' }], tagPrefix: 'p.' },
      ],
    })).toEqual([
      'sources.0.topics.0: "plant/#/x": # must be a whole level and the last one (e.g. plant/#)',
      'sources.0.topics.1: "plant/a+": + must be a whole level (e.g. plant/+/temperature)',
      'sources.1.values.0.tag: {3} refers to topic level 3, but a subscribed topic has only 2 levels',
      'sources.1.values.1.tag: unknown placeholder {name} in "{name}"; use {1}, {2}... for topic levels or {topic}',
      'sources.1.values.3.tag: tag template "k" is already used by values[2]',
      'sources.2.topics.0: Sparkplug B topics start with spBv1.0/ (e.g. spBv1.0/<group>/#)',
      'sources.2.values: values apply to json sources; Sparkplug B metrics are named by their birth messages',
      'sources.3.tagPrefix: tagPrefix applies to sparkplug sources; write the prefix into each value tag template',
    ]);
  });

  it('checks the alert topic templates', () => {
    expect(issues({ brokers: [broker], alerts: { broker: 'site', topic: 'x/{gateway}/{line}/#', statusTopic: 's/{model}' } })).toEqual([
      'alerts.topic: unknown placeholder {line}; use {gateway}, {model}, {kind}, {severity}, {asset}',
      'alerts.topic: a topic to publish to cannot contain the wildcards + or #',
      'alerts.statusTopic: unknown placeholder {model}; use {gateway}',
    ]);
  });

  it('refuses an alert sink that would be down before it is degraded', () => {
    expect(issues({ brokers: [broker], alerts: { broker: 'site', maxUnackedAgeMs: 20_000, maxUndeliveredMs: 10_000 } })).toEqual([
      'alerts.maxUndeliveredMs: maxUndeliveredMs (10000) is below maxUnackedAgeMs (20000): the sink would be down before it is degraded',
    ]);
    expect(issues({ brokers: [broker], alerts: { broker: 'site', maxUnackedAgeMs: 30_000 } })).toEqual([]);
  });
});
