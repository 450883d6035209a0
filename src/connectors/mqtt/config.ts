import { Type, type Static } from '@sinclair/typebox';
import { ClockPolicySchema, MAX_TIMER_MS, Name, Secret, Section, type ConfigIssueReporter } from '../../core/config-types.js';
import { ALERT_TOPIC_FIELDS, STATUS_TOPIC_FIELDS, templateFields } from './alert-topic.js';
import { parseTagTemplate } from './tag-template.js';
import { topicFilterProblem } from './topic-filter.js';

/** One MQTT broker connection, shared by the sources and the alert sink that name it. */
export const MqttBrokerSchema = Section({
  name: Name({ description: 'Name the sources and the alert sink use to refer to this broker.' }),
  url: Type.String({
    description: 'mqtt://host:1883 or mqtts://host:8883 (ws:// and wss:// for brokers behind a web proxy). No user:password@ here.',
    pattern: '^(mqtt|mqtts|tcp|tls|ssl|ws|wss)://[^/?#]+',
    examples: ['mqtt://127.0.0.1:1883'],
  }),
  clientId: Type.Optional(
    Type.String({
      description:
        'Client id prefix. Each connection to this broker appends its role (`-alerts`, `-source-<name>`) so the sink and every ' +
        'source hold their own session. Default lineguard-<gateway id>-<broker name>. Keep it stable: persistent sessions are ' +
        'found by client id.',
      minLength: 1,
      maxLength: 200,
    }),
  ),
  protocolVersion: Type.Union([Type.Literal(4), Type.Literal(5)], { description: '4 = MQTT 3.1.1, 5 = MQTT 5.', default: 4 }),
  username: Type.Optional(Type.String({ description: 'User name, for brokers that require one.', minLength: 1 })),
  password: Type.Optional(Secret({ description: 'Write ${env:NAME} or ${file:PATH}, never the password itself.' })),
  cleanSession: Type.Boolean({
    description:
      'false keeps a persistent session on the broker across reconnects and restarts: QoS 1 device data published while the ' +
      'gateway was away is queued by the broker (up to its max_queued_messages: raise it, Mosquitto drops beyond 1000).',
    default: false,
  }),
  sessionExpiryS: Type.Integer({
    description: 'MQTT 5 only: how long the broker keeps a persistent session after the connection drops.',
    minimum: 0,
    maximum: 4294967295,
    default: 86400,
  }),
  keepaliveS: Type.Integer({
    description: 'MQTT keep-alive in seconds: a connection silent for 1.5 times this is considered dead and reopened.',
    minimum: 1,
    maximum: 65535,
    default: 30,
  }),
  connectTimeoutMs: Type.Integer({
    description: 'A connection attempt without CONNACK after this long is abandoned and retried.',
    minimum: 500,
    maximum: 300000,
    default: 10000,
  }),
  reconnect: Section(
    {
      initialDelayMs: Type.Integer({ description: 'Ceiling of the first retry delay.', minimum: 100, maximum: 600_000, default: 1000 }),
      maxDelayMs: Type.Integer({ description: 'Ceiling of the retry delay after many failures.', minimum: 1000, maximum: 3_600_000, default: 30000 }),
    },
    { description: 'Exponential backoff with full jitter between reconnect attempts.', default: {} },
  ),
  tls: Type.Optional(
    Section(
      {
        caFile: Type.Optional(
          Type.String({ description: 'CA certificate(s) that sign the broker certificate (PEM); default the system CAs.', minLength: 1 }),
        ),
        certFile: Type.Optional(Type.String({ description: 'Client certificate (PEM), for brokers that require one.', minLength: 1 })),
        keyFile: Type.Optional(Type.String({ description: 'Client private key (PEM).', minLength: 1 })),
        keyPassphrase: Type.Optional(Secret({ description: 'Passphrase of an encrypted key file. Write ${env:NAME} or ${file:PATH}.' })),
        serverName: Type.Optional(Type.String({ description: 'Name checked against the broker certificate; default the URL host.' })),
        rejectUnauthorized: Type.Boolean({ description: 'Check the broker certificate and its name. Turn off only to debug.', default: true }),
      },
      { description: 'TLS settings for mqtts:// and wss:// URLs. Relative file paths are under gateway.stateDir.' },
    ),
  ),
});

/** One value extracted from a JSON message. */
export const MqttValueSchema = Section({
  tag: Type.String({
    description: 'Tag name template; {1}, {2}... are topic levels (1 = first), {topic} the whole topic.',
    minLength: 1,
    examples: ['press1.{3}.rms'],
  }),
  pointer: Type.String({
    description: 'JSON pointer (RFC 6901) to the value, e.g. /temperature or /axes/0; "" = the whole payload (a plain number).',
    pattern: '^(/.*)?$',
    default: '',
  }),
  type: Type.Union([Type.Literal('auto'), Type.Literal('number'), Type.Literal('boolean'), Type.Literal('string')], {
    description:
      'auto keeps the JSON type (number, boolean or string); number also accepts numeric strings and booleans (1/0); boolean ' +
      'accepts true/false and 0/1; string accepts any scalar. Other values are dropped and counted.',
    default: 'auto',
  }),
});

/** Sparkplug B host behaviour. */
export const MqttSparkplugSchema = Section(
  {
    requestRebirth: Type.Boolean({
      description:
        'Send NCMD "Node Control/Rebirth" to an edge node whose data cannot be decoded (data before its birth, an unknown ' +
        'alias, a sequence gap not filled in time), at most once per rebirthMinIntervalMs: after a gateway restart the ' +
        'nodes would otherwise stay silent until they rebirth on their own (spec: a host requests a rebirth). Turn it off ' +
        'where a non-primary host commanding edge nodes is against plant policy or refused by broker ACLs; such data is ' +
        'then dropped and counted until the node rebirths by itself.',
      default: true,
    }),
    reorderTimeoutMs: Type.Integer({
      description: 'Sparkplug "Reorder Timeout": how long a missing sequence number may be late before the node is considered out of sync.',
      minimum: 0,
      maximum: 600000,
      default: 2000,
    }),
    rebirthMinIntervalMs: Type.Integer({
      description: 'At most one rebirth request per edge node in this interval.',
      minimum: 1000,
      maximum: MAX_TIMER_MS,
      default: 10000,
    }),
  },
  { description: 'For sparkplug sources.', default: {} },
);

/** A subscription that turns device messages into tag samples. */
export const MqttSourceSchema = Section({
  name: Name({ description: 'Name of this source in logs, metrics and /healthz.' }),
  broker: Name({ description: 'Name of a broker in mqtt.brokers.' }),
  format: Type.Union([Type.Literal('json'), Type.Literal('sparkplug')], {
    description: 'json (or a plain number) payloads, or Sparkplug B (topics spBv1.0/...).',
    default: 'json',
  }),
  topics: Type.Array(Type.String({ minLength: 1 }), { description: 'Topic filters, + and # allowed.', minItems: 1 }),
  qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], {
    description: 'Subscription QoS. 1 or 2 with cleanSession false: the broker keeps messages while the gateway is away.',
    default: 1,
  }),
  values: Type.Optional(Type.Array(MqttValueSchema, { description: 'For json: the values each message carries.', minItems: 1 })),
  timestamp: Type.Optional(
    Section(
      {
        pointer: Type.String({ description: 'JSON pointer to the timestamp field.', pattern: '^/.*$' }),
        format: Type.Union([Type.Literal('epoch_ms'), Type.Literal('epoch_s'), Type.Literal('iso8601')], {
          description: 'epoch_ms / epoch_s: a number (or numeric string); iso8601: e.g. 2024-05-01T12:00:00.250Z.',
          default: 'epoch_ms',
        }),
      },
      { description: 'For json: where the device timestamp is; arrival time when omitted. Messages with a bad timestamp are dropped.' },
    ),
  ),
  tagPrefix: Type.String({
    description: 'For sparkplug: prepended to tag names, which are <group>.<node>[.<device>].<metric name>.',
    default: '',
  }),
  sparkplug: MqttSparkplugSchema,
  maxPayloadBytes: Type.Integer({
    description: 'Larger payloads are dropped and counted (at most 268435455, the largest MQTT packet).', minimum: 16, maximum: 268_435_455, default: 262144,
  }),
  clock: ClockPolicySchema,
});

/** Where alerts are published. */
export const MqttAlertSinkSchema = Section(
  {
    broker: Name({ description: 'Name of a broker in mqtt.brokers.' }),
    topic: Type.String({
      description: 'Topic template: {gateway}, {model}, {kind}, {severity}, {asset} ("/" and wildcards in values become "_").',
      default: 'lineguard/{gateway}/alerts/{model}',
      minLength: 1,
    }),
    statusTopic: Type.String({
      description:
        'Retained gateway status ({gateway} allowed): {"state":"online",...} on connect, {"state":"offline",...} on shutdown and ' +
        'as the last will when the connection is lost.',
      default: 'lineguard/{gateway}/status',
      minLength: 1,
    }),
    maxInFlight: Type.Integer({
      description: 'QoS 1 publishes awaiting PUBACK at once (more than ~100 gains nothing on a LAN).',
      minimum: 1,
      maximum: 1000,
      default: 100,
    }),
    maxUnackedAgeMs: Type.Optional(
      Type.Integer({
        description:
          'The sink is degraded in /healthz when the oldest alert the broker has not acknowledged (PUBACK) is older than this, ' +
          'whatever the TCP connection says: a frozen or overloaded broker keeps the connection open for up to 1.5 x keepaliveS ' +
          'while it acknowledges nothing. Also exported as lineguard_alert_oldest_unacked_age_seconds.',
        minimum: 100,
        maximum: 3_600_000,
        default: 15_000,
      }),
    ),
    maxUndeliveredMs: Type.Optional(
      Type.Integer({
        description:
          'After this long unable to deliver (no broker connection, or the oldest unacknowledged alert older than this) the ' +
          'gateway as a whole is down: /healthz answers 503, because an alert raised now would not reach anyone.',
        minimum: 1_000,
        maximum: 86_400_000,
        default: 300_000,
      }),
    ),
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

/** The alert sink's health bounds when the config leaves them out (the loader fills in the same schema defaults). */
export const ALERT_SINK_DEFAULTS = {
  maxUnackedAgeMs: MqttAlertSinkSchema.properties.maxUnackedAgeMs.default as number,
  maxUndeliveredMs: MqttAlertSinkSchema.properties.maxUndeliveredMs.default as number,
} as const;

export type MqttBrokerConfig = Static<typeof MqttBrokerSchema>;
export type MqttSourceConfig = Static<typeof MqttSourceSchema>;
export type MqttValueConfig = Static<typeof MqttValueSchema>;
export type MqttSparkplugConfig = Static<typeof MqttSparkplugSchema>;
export type MqttAlertSinkConfig = Static<typeof MqttAlertSinkSchema>;
export type MqttConfig = Static<typeof MqttConfigSchema>;

type Path = ReadonlyArray<string | number>;

/**
 * Cross-field checks of the `mqtt:` section that JSON Schema cannot express. Paths are relative to `mqtt`
 * (the loader prefixes them).
 */
export function checkMqttConfig(cfg: MqttConfig, report: ConfigIssueReporter): void {
  const brokers = new Set<string>();
  (cfg.brokers ?? []).forEach((broker, b) => {
    if (brokers.has(broker.name)) report(['brokers', b, 'name'], `broker name "${broker.name}" is used twice`);
    brokers.add(broker.name);
    checkBroker(broker, ['brokers', b], report);
  });

  const sources = new Set<string>();
  (cfg.sources ?? []).forEach((source, s) => {
    const at: Path = ['sources', s];
    if (sources.has(source.name)) report([...at, 'name'], `source name "${source.name}" is used twice`);
    sources.add(source.name);
    if (!brokers.has(source.broker)) report([...at, 'broker'], unknownBroker(source.broker, brokers));
    checkSource(source, at, report);
  });

  if (cfg.alerts) {
    const alerts = cfg.alerts;
    if (!brokers.has(alerts.broker)) report(['alerts', 'broker'], unknownBroker(alerts.broker, brokers));
    checkTopicTemplate(alerts.topic ?? '', ALERT_TOPIC_FIELDS, ['alerts', 'topic'], report);
    checkTopicTemplate(alerts.statusTopic ?? '', STATUS_TOPIC_FIELDS, ['alerts', 'statusTopic'], report);
    const degradedAfter = alerts.maxUnackedAgeMs ?? ALERT_SINK_DEFAULTS.maxUnackedAgeMs;
    const downAfter = alerts.maxUndeliveredMs ?? ALERT_SINK_DEFAULTS.maxUndeliveredMs;
    if (downAfter < degradedAfter) {
      report(['alerts', 'maxUndeliveredMs'], `maxUndeliveredMs (${downAfter}) is below maxUnackedAgeMs (${degradedAfter}): the sink would be down before it is degraded`);
    }
  }
}

function unknownBroker(name: string, known: Set<string>): string {
  const list = [...known];
  return list.length === 0
    ? `broker "${name}" is not defined: add it under mqtt.brokers`
    : `broker "${name}" is not defined in mqtt.brokers (defined: ${list.join(', ')})`;
}

function checkBroker(broker: MqttBrokerConfig, at: Path, report: ConfigIssueReporter): void {
  const scheme = /^([a-z]+):\/\/([^/?#]*)/.exec(broker.url);
  const authority = scheme?.[2] ?? '';
  const port = /:(\d+)$/.exec(authority)?.[1];
  if (authority.includes('@')) {
    report([...at, 'url'], 'put the user name and password in `username` and `password` (a secret), not in the URL');
  } else if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    // mqtt.js throws on such a port at every connect attempt instead of failing the connection.
    report([...at, 'url'], `port ${port} is out of range: use 1 to 65535 (1883 for mqtt://, 8883 for mqtts://)`);
  } else if (!URL.canParse(broker.url)) {
    report([...at, 'url'], 'not a valid URL: write <scheme>://<host>:<port>, e.g. mqtt://192.168.10.5:1883 (no spaces; IPv6 in brackets)');
  }
  const secure = scheme ? ['mqtts', 'tls', 'ssl', 'wss'].includes(scheme[1]!) : false;
  if (broker.tls && !secure) {
    report([...at, 'tls'], `tls settings need an mqtts:// (or wss://) URL; ${scheme?.[1] ?? 'this'}:// connections are not encrypted`);
  }
  if (broker.password !== undefined && broker.username === undefined) {
    report([...at, 'password'], 'a password needs a username');
  }
  const tls = broker.tls;
  if (tls) {
    if (tls.certFile && !tls.keyFile) report([...at, 'tls', 'keyFile'], 'a client certificate (certFile) needs its private key (keyFile)');
    if (tls.keyFile && !tls.certFile) report([...at, 'tls', 'certFile'], 'a private key (keyFile) needs its client certificate (certFile)');
    if (tls.keyPassphrase !== undefined && !tls.keyFile) report([...at, 'tls', 'keyPassphrase'], 'keyPassphrase is for keyFile, which is not set');
  }
  const reconnect = broker.reconnect;
  if (reconnect && reconnect.maxDelayMs < reconnect.initialDelayMs) {
    report([...at, 'reconnect', 'maxDelayMs'], `maxDelayMs (${reconnect.maxDelayMs}) is below initialDelayMs (${reconnect.initialDelayMs})`);
  }
}

function checkSource(source: MqttSourceConfig, at: Path, report: ConfigIssueReporter): void {
  source.topics.forEach((topic, t) => {
    const problem = topicFilterProblem(topic);
    if (problem) report([...at, 'topics', t], problem);
    else if (source.format === 'sparkplug' && !/^spBv1\.0\/|^[+#]/.test(topic)) {
      report([...at, 'topics', t], 'Sparkplug B topics start with spBv1.0/ (e.g. spBv1.0/<group>/#)');
    }
  });

  if (source.format === 'sparkplug') {
    if (source.values) report([...at, 'values'], 'values apply to json sources; Sparkplug B metrics are named by their birth messages');
    if (source.timestamp) report([...at, 'timestamp'], 'timestamp applies to json sources; Sparkplug B carries its own timestamps');
    return;
  }

  if (!source.values) {
    report([...at, 'values'], 'a json source needs values: [{ tag: ..., pointer: ... }] saying which tags each message carries');
    return;
  }
  if (source.tagPrefix) report([...at, 'tagPrefix'], 'tagPrefix applies to sparkplug sources; write the prefix into each value tag template');
  const maxLevels = Math.min(...source.topics.map((t) => (t.split('/').includes('#') ? Infinity : t.split('/').length)));
  const tags = new Map<string, number>();
  source.values.forEach((value, v) => {
    const parsed = parseTagTemplate(value.tag);
    if (typeof parsed === 'string') {
      report([...at, 'values', v, 'tag'], parsed);
      return;
    }
    if (parsed.maxLevel > maxLevels) {
      report([...at, 'values', v, 'tag'], `{${parsed.maxLevel}} refers to topic level ${parsed.maxLevel}, but a subscribed topic has only ${maxLevels} levels`);
    }
    const previous = tags.get(value.tag);
    if (previous !== undefined) report([...at, 'values', v, 'tag'], `tag template "${value.tag}" is already used by values[${previous}]`);
    else tags.set(value.tag, v);
  });
}

function checkTopicTemplate(template: string, allowed: readonly string[], at: Path, report: ConfigIssueReporter): void {
  for (const field of templateFields(template)) {
    if (!allowed.includes(field)) report(at, `unknown placeholder {${field}}; use ${allowed.map((f) => `{${f}}`).join(', ')}`);
  }
  if (/[+#]/.test(template)) report(at, 'a topic to publish to cannot contain the wildcards + or #');
  if (template.includes('\u0000')) report(at, 'a topic cannot contain the NUL character');
}
