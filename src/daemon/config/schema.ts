import { Type, type Static } from '@sinclair/typebox';
import { Name, Secret, Section } from '../../core/config-types.js';
import { BufferConfigSchema } from '../../buffer/config.js';
import { OpcuaServerSchema } from '../../connectors/opcua/config.js';
import { MqttConfigSchema } from '../../connectors/mqtt/config.js';
import { ModelsConfigSchema } from '../../runtime/config.js';

/**
 * The whole config file, composed from the sections each part of the gateway declares once.
 * TypeScript types, the JSON Schema (`lineguard schema`, schema/lineguard.schema.json) and the commented example
 * (`lineguard example-config`) all come from this object.
 */

export const GatewaySectionSchema = Section(
  {
    id: Name({ description: 'Gateway id: in every alert, topic and metric. Unique in the plant.', examples: ['press-line-1'] }),
    stateDir: Type.String({
      description: 'Where the gateway keeps its state: SQLite buffer, OPC UA PKI, TensorRT engine cache.',
      default: '/var/lib/lineguard',
    }),
    sourceUnavailable: Section(
      {
        enabled: Type.Boolean({ description: 'Raise a source_unavailable alert for a source that stays down.', default: true }),
        afterMs: Type.Integer({
          description: 'How long a source (OPC UA server, MQTT source) may be down before source_unavailable is raised; cleared when it is back.',
          minimum: 1000, maximum: 2_147_483_647, default: 60000,
        }),
        severity: Type.Union(
          [Type.Literal('critical'), Type.Literal('major'), Type.Literal('minor'), Type.Literal('warning'), Type.Literal('info')],
          { description: 'Severity of the source_unavailable alert.', default: 'major' },
        ),
      },
      { description: 'The source_unavailable alert (docs/alert-payload.md): silence from a source is not health.', default: {} },
    ),
  },
  { description: 'Who this gateway is and where it keeps its state.' },
);

export const LogSectionSchema = Section(
  {
    level: Type.Union(
      [Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace')],
      { description: 'Lowest level written. Logs are JSON lines on stdout (pretty on a terminal).', default: 'info' },
    ),
  },
  { description: 'Logging.', default: {} },
);

export const HttpSectionSchema = Section(
  {
    enabled: Type.Boolean({ description: 'Serve /metrics and /healthz.', default: true }),
    host: Type.String({ description: 'Address to listen on. Keep it on localhost unless a firewall protects it.', default: '127.0.0.1' }),
    port: Type.Integer({ description: 'TCP port (0 = any free port).', minimum: 0, maximum: 65535, default: 9464 }),
    statusPage: Section(
      {
        enabled: Type.Boolean({ description: 'Serve the read-only status page at / (and the JSON it polls under /api/).', default: true }),
        token: Type.Optional(Secret({
          description: 'Shared token for the page when http.host is not loopback: open /?token=<token> once (it is kept in a cookie), or send "Authorization: Bearer <token>".',
          minLength: 16,
        })),
        basicAuth: Type.Optional(Section(
          {
            username: Type.String({ description: 'User name for HTTP basic auth.', minLength: 1 }),
            password: Secret({ description: 'Password for HTTP basic auth.', minLength: 8 }),
          },
          { description: 'HTTP basic auth for the page (the browser asks for it); with token, either one is accepted.' },
        )),
      },
      { description: 'The local status page at / (README "Observability"). /metrics and /healthz are never behind its token.', default: {} },
    ),
  },
  { description: 'HTTP endpoint for Prometheus (/metrics), health checks (/healthz) and the status page (/).', default: {} },
);

export const ReloadSectionSchema = Section(
  {
    watchFile: Type.Boolean({ description: 'Also reload when the config file changes (SIGHUP always reloads).', default: false }),
  },
  { description: 'Config reload.', default: {} },
);

export const ConfigSchema = Section(
  {
    $schema: Type.Optional(Type.String({ description: 'Path or URL of the JSON Schema, for editors.' })),
    gateway: GatewaySectionSchema,
    log: LogSectionSchema,
    http: HttpSectionSchema,
    reload: ReloadSectionSchema,
    opcua: Type.Array(OpcuaServerSchema, { description: 'OPC UA servers (PLCs) and the tags read from them.', default: [] }),
    mqtt: MqttConfigSchema,
    buffer: BufferConfigSchema,
    models: ModelsConfigSchema,
  },
  {
    $id: 'https://lineguard.dev/schema/lineguard.schema.json',
    title: 'Lineguard gateway configuration',
    description: 'One YAML file, edited by hand. Check it with `lineguard check-config FILE`.',
  },
);

export type Config = Static<typeof ConfigSchema>;

/** Top-level sections, in the order the file shows them and components start. */
export const SECTIONS = ['gateway', 'log', 'http', 'reload', 'opcua', 'mqtt', 'buffer', 'models'] as const;
