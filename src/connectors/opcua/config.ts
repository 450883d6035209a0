import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { ClockPolicySchema, MAX_CONFIG_NUMBER, MAX_TIMER_MS, Name, Secret, Section, type ConfigIssueReporter } from '../../core/config-types.js';
import { parseNodeId } from './node-id.js';

/** One tag read from an OPC UA server. */
export const OpcuaTagSchema = Section({
  tag: Name({ description: 'Tag name this value becomes in the gateway (unique), e.g. press1.torque.' }),
  nodeId: Type.String({
    description:
      'Node id: ns=2;s=Name, ns=2;i=1001, ns=2;g=<guid>, ns=2;b=<base64>, or nsu=<namespace uri>;s=Name. Prefer nsu=: ' +
      'the URI is resolved at every connect, so the tag survives a server that renumbers its namespaces on restart.',
    minLength: 3,
    examples: ['nsu=urn:plc1:sim;s=Press.Torque'],
  }),
  mode: Type.Union([Type.Literal('subscribe'), Type.Literal('poll')], {
    description: 'subscribe (monitored item: the server reports changes) or poll (read every pollIntervalMs, for servers that limit subscriptions).',
    default: 'subscribe',
  }),
  samplingIntervalMs: Type.Integer({
    description: 'Requested sampling interval in the server (subscribe). Servers may revise it (node-opcua raises anything below 50 ms to 50 ms); the granted value is logged.',
    minimum: 0,
    maximum: 86_400_000,
    default: 1000,
  }),
  pollIntervalMs: Type.Optional(Type.Integer({ description: 'Read period when mode is poll (required then).', minimum: 50, maximum: 86_400_000 })),
  queueSize: Type.Integer({
    description: 'Server-side queue of the monitored item: values kept between two publishes (subscribe). The granted value is logged.',
    minimum: 1,
    maximum: 10000,
    default: 10,
  }),
  deadband: Type.Optional(
    Section(
      {
        type: Type.Union([Type.Literal('absolute'), Type.Literal('percent')], {
          description: 'absolute: in engineering units; percent: of the variable\'s EURange (the server must expose one; subscribe only).',
        }),
        value: Type.Number({ description: 'Changes smaller than this are not reported.', minimum: 0, maximum: MAX_CONFIG_NUMBER }),
      },
      { description: 'Report a numeric value only when it moved by more than this (server-side for subscribe, client-side for poll).' },
    ),
  ),
  arrayIndex: Type.Optional(
    Type.Integer({ description: 'For an array variable: the element this tag reads (arrays are refused without it).', minimum: 0, maximum: 16_777_215 }),
  ),
});

/** One OPC UA server (a PLC). */
export const OpcuaServerSchema = Section({
  name: Name({ description: 'Name of this server in logs, metrics and /healthz.' }),
  endpoint: Type.String({ description: 'Endpoint URL.', pattern: '^opc\\.tcp://', examples: ['opc.tcp://192.168.10.5:4840'] }),
  security: Section(
    {
      mode: Type.Union([Type.Literal('None'), Type.Literal('Sign'), Type.Literal('SignAndEncrypt')], {
        description: 'Message security mode.',
        default: 'SignAndEncrypt',
      }),
      policy: Type.Optional(
        Type.Union(
          [Type.Literal('None'), Type.Literal('Basic256Sha256'), Type.Literal('Aes128_Sha256_RsaOaep'), Type.Literal('Aes256_Sha256_RsaPss')],
          { description: 'Security policy. None only with mode None; when omitted: None for mode None, Basic256Sha256 otherwise.' },
        ),
      ),
      trustOnFirstUse: Type.Boolean({
        description:
          'DANGER: trust the server certificate at the first contact, when no certificate of this server (same application ' +
          'URI) is trusted yet; logged loudly. A changed certificate is still refused. Off: an unknown certificate is refused ' +
          'and logged with the `lineguard pki trust <thumbprint>` command that trusts it.',
        default: false,
      }),
    },
    { description: 'Transport security. The client certificate lives in <gateway.stateDir>/pki (own/, trusted/, rejected/, issuers/).', default: {} },
  ),
  auth: Section(
    {
      type: Type.Union([Type.Literal('anonymous'), Type.Literal('username'), Type.Literal('certificate')], {
        description: 'anonymous, username (with password) or certificate (X.509 user certificate).',
        default: 'anonymous',
      }),
      username: Type.Optional(Type.String({ minLength: 1, description: 'For type username.' })),
      password: Type.Optional(Secret({ description: 'For type username. Write ${env:NAME} or ${file:PATH}, never the password itself.' })),
      certificateFile: Type.Optional(Type.String({ description: 'For type certificate: absolute path of the X.509 user certificate (PEM or DER).' })),
      privateKeyFile: Type.Optional(Type.String({ description: 'For type certificate: absolute path of its private key (PEM, unencrypted).' })),
    },
    { description: 'User authentication.', default: {} },
  ),
  publishingIntervalMs: Type.Integer({ description: 'Requested publishing interval of the subscription.', minimum: 10, maximum: 600_000, default: 1000 }),
  sessionTimeoutMs: Type.Integer({
    description: 'Requested session timeout; must exceed publishingIntervalMs × keepAliveCount.',
    minimum: 1000,
    maximum: MAX_TIMER_MS,
    default: 60000,
  }),
  keepAliveCount: Type.Integer({ description: 'The server sends a keep-alive after this many empty publishing intervals.', minimum: 1, maximum: 10_000, default: 10 }),
  silenceTimeoutIntervals: Type.Integer({
    description: 'Reconnect when neither data nor keep-alive arrived for this many keep-alive periods ("connected but silent").',
    minimum: 2,
    maximum: 100,
    default: 3,
  }),
  requestTimeoutMs: Type.Integer({
    description: 'Timeout of one request (connect, read, create items).', minimum: 1000, maximum: 600_000, default: 15000,
  }),
  maxItemsPerCall: Type.Integer({
    description: 'Monitored items created (or nodes read) per service call; lower it for servers that answer BadTooManyOperations.',
    minimum: 1,
    maximum: 10000,
    default: 1000,
  }),
  retryDegradedMs: Type.Integer({
    description: 'How often a tag that could not be monitored (unknown node id, unknown namespace, refused deadband) is retried.',
    minimum: 1000,
    maximum: 86_400_000,
    default: 30000,
  }),
  perTagAgeMetric: Type.Boolean({
    description: 'Export lineguard_opcua_tag_update_age_seconds per tag (one series per tag); the per-server summary is always exported.',
    default: false,
  }),
  reconnect: Section(
    {
      initialDelayMs: Type.Integer({
        description: 'Ceiling of the first delay; each failed attempt doubles it.', minimum: 100, maximum: 600_000, default: 1000,
      }),
      maxDelayMs: Type.Integer({ description: 'Largest delay between two attempts.', minimum: 1000, maximum: 3_600_000, default: 60000 }),
    },
    { description: 'Exponential backoff with full jitter between reconnect attempts.', default: {} },
  ),
  clock: ClockPolicySchema,
  tags: Type.Array(OpcuaTagSchema, { description: 'Tags read from this server.', minItems: 1 }),
});

export type OpcuaTagConfig = Static<typeof OpcuaTagSchema>;
export type OpcuaServerConfig = Static<typeof OpcuaServerSchema>;
export type SecurityModeName = OpcuaServerConfig['security']['mode'];
export type SecurityPolicyName = NonNullable<OpcuaServerConfig['security']['policy']>;

/** The policy in force: the configured one, or the default that goes with the mode. */
export function effectivePolicy(security: Pick<OpcuaServerConfig['security'], 'mode' | 'policy'>): SecurityPolicyName {
  return security.policy ?? (security.mode === 'None' ? 'None' : 'Basic256Sha256');
}

/**
 * Cross-field checks JSON Schema cannot express. Paths are relative to the `opcua:` section. (Tag names unique
 * across all servers is checked by the loader for the whole file.)
 */
export function checkOpcuaConfig(servers: readonly OpcuaServerConfig[], report: ConfigIssueReporter): void {
  const names = new Map<string, number>();
  servers.forEach((server, s) => {
    const previous = names.get(server.name);
    if (previous !== undefined) report([s, 'name'], `server name "${server.name}" is already used by opcua[${previous}]`);
    else names.set(server.name, s);
    checkEndpoint(server.endpoint, (p, m) => report([s, ...p], m));
    checkSecurity(server, (p, m) => report([s, ...p], m));
    checkTiming(server, (p, m) => report([s, ...p], m));
    server.tags.forEach((tag, t) => checkTag(tag, (p, m) => report([s, 'tags', t, ...p], m)));
  });
}

/** The schema only checks the scheme; node-opcua answers a bad host or port with a generic "may have been rejected". */
function checkEndpoint(endpoint: string, report: ConfigIssueReporter): void {
  const authority = /^opc\.tcp:\/\/([^/?#]*)/.exec(endpoint)?.[1] ?? '';
  const port = /:(\d+)$/.exec(authority)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    report(['endpoint'], `port ${port} is out of range: use 1 to 65535 (OPC UA servers usually listen on 4840)`);
  } else if (!URL.canParse(endpoint) || authority === '' || authority.startsWith(':')) {
    report(['endpoint'], 'not a valid endpoint URL: write opc.tcp://<host>:<port>, e.g. opc.tcp://192.168.10.5:4840 (no spaces; IPv6 in brackets)');
  }
}

function checkSecurity(server: OpcuaServerConfig, report: ConfigIssueReporter): void {
  const { mode } = server.security;
  const policy = effectivePolicy(server.security);
  if (mode === 'None' && policy !== 'None') report(['security', 'policy'], `policy ${policy} needs mode Sign or SignAndEncrypt; with mode None the policy is None`);
  if (mode !== 'None' && policy === 'None') report(['security', 'policy'], `mode ${mode} needs a policy: Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss`);

  const { auth } = server;
  if (auth.type === 'username') {
    if (auth.username === undefined) report(['auth'], 'auth type username needs username');
    if (auth.password === undefined) report(['auth'], 'auth type username needs password (write ${env:NAME} or ${file:PATH})');
  } else if (auth.username !== undefined || auth.password !== undefined) {
    report(['auth', auth.username !== undefined ? 'username' : 'password'], `username/password are only used with auth type username (type is ${auth.type})`);
  }
  if (auth.type === 'certificate') {
    if (auth.certificateFile === undefined) report(['auth'], 'auth type certificate needs certificateFile');
    if (auth.privateKeyFile === undefined) report(['auth'], 'auth type certificate needs privateKeyFile');
  } else if (auth.certificateFile !== undefined || auth.privateKeyFile !== undefined) {
    report(['auth', auth.certificateFile !== undefined ? 'certificateFile' : 'privateKeyFile'], `certificateFile/privateKeyFile are only used with auth type certificate (type is ${auth.type})`);
  }
  for (const key of ['certificateFile', 'privateKeyFile'] as const) {
    const file = auth[key];
    if (file !== undefined && !path.isAbsolute(file)) report(['auth', key], `${key} must be an absolute path (the daemon's working directory is not the config's)`);
  }
}

function checkTiming(server: OpcuaServerConfig, report: ConfigIssueReporter): void {
  const keepAlivePeriod = server.publishingIntervalMs * server.keepAliveCount;
  if (server.sessionTimeoutMs <= keepAlivePeriod) {
    report(['sessionTimeoutMs'], `sessionTimeoutMs (${server.sessionTimeoutMs}) must exceed publishingIntervalMs × keepAliveCount (${keepAlivePeriod}), or the session expires between keep-alives`);
  }
  const silence = keepAlivePeriod * server.silenceTimeoutIntervals;
  if (silence > MAX_TIMER_MS) {
    report(['silenceTimeoutIntervals'], `publishingIntervalMs × keepAliveCount × silenceTimeoutIntervals (${silence} ms) must be at most ${MAX_TIMER_MS} ms (about 24 days), the longest timer Node.js runs`);
  }
  if (server.reconnect.initialDelayMs > server.reconnect.maxDelayMs) {
    report(['reconnect', 'initialDelayMs'], `initialDelayMs (${server.reconnect.initialDelayMs}) is larger than maxDelayMs (${server.reconnect.maxDelayMs})`);
  }
}

function checkTag(tag: OpcuaTagConfig, report: ConfigIssueReporter): void {
  const parsed = parseNodeId(tag.nodeId);
  if (!parsed.ok) report(['nodeId'], parsed.error);
  if (tag.mode === 'poll') {
    if (tag.pollIntervalMs === undefined) report(['pollIntervalMs'], 'mode poll needs pollIntervalMs');
    if (tag.deadband?.type === 'percent') report(['deadband', 'type'], 'a percent deadband needs the server (mode subscribe); use an absolute deadband with mode poll');
  } else if (tag.pollIntervalMs !== undefined) {
    report(['pollIntervalMs'], 'pollIntervalMs is only used with mode poll; a subscription uses samplingIntervalMs');
  }
  if (tag.deadband?.type === 'percent' && tag.deadband.value > 100) report(['deadband', 'value'], `a percent deadband is at most 100 (got ${tag.deadband.value})`);
}
