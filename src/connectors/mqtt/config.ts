import { Type, type Static } from '@sinclair/typebox';
import { Name, Secret, Section } from '../../core/config-types.js';

/** One MQTT broker connection, shared by the sources and the alert sink that name it. */
export const MqttBrokerSchema = Section({
  name: Name({ description: 'Name the sources and the alert sink use to refer to this broker.' }),
  url: Type.String({
    description: 'mqtt://host:1883 or mqtts://host:8883.', pattern: '^(mqtt|mqtts|tcp|tls|ws|wss)://', examples: ['mqtt://127.0.0.1:1883'],
  }),
  clientId: Type.Optional(Type.String({ description: 'Client id; default lineguard-<gateway id>-<broker name>.', minLength: 1 })),
  protocolVersion: Type.Union([Type.Literal(4), Type.Literal(5)], { description: '4 = MQTT 3.1.1, 5 = MQTT 5.', default: 4 }),
  username: Type.Optional(Type.String({ minLength: 1 })),
  password: Type.Optional(Secret({ description: 'Write ${env:NAME} or ${file:PATH}, never the password itself.' })),
  cleanSession: Type.Boolean({ description: 'false keeps a persistent session on the broker across restarts.', default: false }),
  keepaliveS: Type.Integer({ description: 'MQTT keep-alive in seconds.', minimum: 1, default: 30 }),
  reconnect: Section(
    { initialDelayMs: Type.Integer({ minimum: 100, default: 1000 }), maxDelayMs: Type.Integer({ minimum: 1000, default: 30000 }) },
    { description: 'Exponential backoff with jitter between reconnect attempts.', default: {} },
  ),
  tls: Type.Optional(
    Section({
      caFile: Type.Optional(Type.String({ description: 'CA certificate(s) that sign the broker certificate (PEM).' })),
      certFile: Type.Optional(Type.String({ description: 'Client certificate (PEM), for brokers that require one.' })),
      keyFile: Type.Optional(Type.String({ description: 'Client private key (PEM).' })),
      keyPassphrase: Type.Optional(Secret()),
      serverName: Type.Optional(Type.String({ description: 'Name checked against the broker certificate; default the URL host.' })),
      rejectUnauthorized: Type.Boolean({ description: 'Check the broker certificate and its name. Turn off only to debug.', default: true }),
    }),
  ),
});

/** One value extracted from a JSON message. */
export const MqttValueSchema = Section({
  tag: Type.String({ description: 'Tag name template; {1}, {2}... are topic levels, {topic} the whole topic.', minLength: 1 }),
  pointer: Type.String({ description: 'JSON pointer (RFC 6901) to the value, e.g. /temperature; "" = the whole payload.', default: '' }),
});

/** A subscription that turns device messages into tag samples. */
export const MqttSourceSchema = Section({
  name: Name({ description: 'Name of this source in logs, metrics and /healthz.' }),
  broker: Name({ description: 'Name of a broker in mqtt.brokers.' }),
  format: Type.Union([Type.Literal('json'), Type.Literal('sparkplug')], {
    description: 'json (or a plain number) payloads, or Sparkplug B (topics spBv1.0/...).', default: 'json',
  }),
  topics: Type.Array(Type.String({ minLength: 1 }), { description: 'Topic filters, + and # allowed.', minItems: 1 }),
  qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { default: 1 }),
  values: Type.Optional(Type.Array(MqttValueSchema, { description: 'For json: the values each message carries.', minItems: 1 })),
  timestamp: Type.Optional(
    Section({
      pointer: Type.String({ description: 'JSON pointer to the timestamp field.' }),
      format: Type.Union([Type.Literal('epoch_ms'), Type.Literal('epoch_s'), Type.Literal('iso8601')], { default: 'epoch_ms' }),
    }, { description: 'Where the device timestamp is; arrival time when omitted.' }),
  ),
  tagPrefix: Type.Optional(Type.String({ description: 'For sparkplug: prefix of tag names (default <group>.<node>[.<device>].<metric>).' })),
  maxPayloadBytes: Type.Integer({ description: 'Larger payloads are dropped and counted.', minimum: 16, default: 262144 }),
});

/** Where alerts are published. */
export const MqttAlertSinkSchema = Section(
  {
    broker: Name({ description: 'Name of a broker in mqtt.brokers.' }),
    topic: Type.String({
      description: 'Topic template: {gateway}, {model}, {kind}, {severity}, {asset}.', default: 'lineguard/{gateway}/alerts/{model}',
    }),
    statusTopic: Type.String({
      description: 'Retained "online" birth and "offline" last will.', default: 'lineguard/{gateway}/status',
    }),
    maxInFlight: Type.Integer({ description: 'QoS 1 publishes awaiting PUBACK at once.', minimum: 1, maximum: 1000, default: 100 }),
  },
  { description: 'Alerts are drained from the outbox and published with QoS 1; they leave the outbox only on PUBACK.' },
);

export const MqttConfigSchema = Section(
  {
    brokers: Type.Array(MqttBrokerSchema, { description: 'Broker connections.', default: [] }),
    sources: Type.Array(MqttSourceSchema, { description: 'Device data in.', default: [] }),
    alerts: Type.Optional(MqttAlertSinkSchema),
  },
  { description: 'MQTT: device data in, alerts out.', default: {} },
);

export type MqttBrokerConfig = Static<typeof MqttBrokerSchema>;
export type MqttSourceConfig = Static<typeof MqttSourceSchema>;
export type MqttAlertSinkConfig = Static<typeof MqttAlertSinkSchema>;
export type MqttConfig = Static<typeof MqttConfigSchema>;
