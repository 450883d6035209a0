import { describe, expect, it } from 'vitest';
import { checkOpcuaConfig, type OpcuaServerConfig } from '../../../src/connectors/opcua/config.js';
import { loadConfigText } from '../../../src/daemon/config/load.js';

function server(overrides: Partial<OpcuaServerConfig> = {}): OpcuaServerConfig {
  return {
    name: 'plc1', endpoint: 'opc.tcp://10.0.0.5:4840',
    security: { mode: 'SignAndEncrypt', trustOnFirstUse: false }, auth: { type: 'anonymous' },
    clock: { timestamps: 'source', maxSkewMs: 86_400_000, stepThresholdMs: 300_000 },
    publishingIntervalMs: 1000, sessionTimeoutMs: 60000, keepAliveCount: 10, silenceTimeoutIntervals: 3, requestTimeoutMs: 15000,
    maxItemsPerCall: 1000, retryDegradedMs: 30000, perTagAgeMetric: false, reconnect: { initialDelayMs: 1000, maxDelayMs: 60000 },
    tags: [{ tag: 'a', nodeId: 'ns=2;s=A', mode: 'subscribe', samplingIntervalMs: 1000, queueSize: 10 }],
    ...overrides,
  };
}

function issues(servers: OpcuaServerConfig[]): string[] {
  const out: string[] = [];
  checkOpcuaConfig(servers, (path, message) => out.push(`${path.join('.')}: ${message}`));
  return out;
}

describe('checkOpcuaConfig', () => {
  it('accepts a sound config', () => {
    expect(issues([server()])).toEqual([]);
  });

  it('checks security mode against policy', () => {
    expect(issues([server({ security: { mode: 'None', policy: 'Basic256Sha256', trustOnFirstUse: false } })]))
      .toEqual(['0.security.policy: policy Basic256Sha256 needs mode Sign or SignAndEncrypt; with mode None the policy is None']);
    expect(issues([server({ security: { mode: 'Sign', policy: 'None', trustOnFirstUse: false } })])[0]).toContain('mode Sign needs a policy');
    expect(issues([server({ security: { mode: 'None', trustOnFirstUse: false } })])).toEqual([]);
  });

  it('refuses endpoints the schema pattern lets through but node-opcua cannot connect to', () => {
    const endpoints = ['opc.tcp://10.0.0.5:99999', 'opc.tcp://', 'opc.tcp://plc 1:4840', 'opc.tcp://:4840', 'opc.tcp://[fe80::1:4840'];
    expect(issues(endpoints.map((endpoint) => server({ endpoint })))).toEqual([
      '0.endpoint: port 99999 is out of range: use 1 to 65535 (OPC UA servers usually listen on 4840)',
      ...[1, 2, 3, 4].flatMap((i) => [
        `${i}.name: server name "plc1" is already used by opcua[0]`,
        `${i}.endpoint: not a valid endpoint URL: write opc.tcp://<host>:<port>, e.g. opc.tcp://192.168.10.5:4840 (no spaces; IPv6 in brackets)`,
      ]),
    ]);
    const fine = ['opc.tcp://plc1.plant.local:4840/UA/Server', 'opc.tcp://[fe80::1]:4840', 'opc.tcp://10.0.0.5:4840'];
    expect(fine.flatMap((endpoint) => issues([server({ endpoint })]))).toEqual([]);
  });

  it('checks what each auth type needs', () => {
    expect(issues([server({ auth: { type: 'username', username: 'op' } })])).toEqual(['0.auth: auth type username needs password (write ${env:NAME} or ${file:PATH})']);
    expect(issues([server({ auth: { type: 'anonymous', password: 'x' } })])).toEqual(['0.auth.password: username/password are only used with auth type username (type is anonymous)']);
    expect(issues([server({ auth: { type: 'certificate', certificateFile: '/etc/u.pem' } })])).toEqual(['0.auth: auth type certificate needs privateKeyFile']);
    expect(issues([server({ auth: { type: 'certificate', certificateFile: 'u.pem', privateKeyFile: '/k.pem' } })]))
      .toEqual(["0.auth.certificateFile: certificateFile must be an absolute path (the daemon's working directory is not the config's)"]);
  });

  it('checks tags: node id syntax, poll settings, deadbands', () => {
    const out = issues([server({
      tags: [
        { tag: 'a', nodeId: 'Motor.Speed', mode: 'subscribe', samplingIntervalMs: 100, queueSize: 1 },
        { tag: 'b', nodeId: 'ns=2;s=B', mode: 'poll', samplingIntervalMs: 100, queueSize: 1 },
        { tag: 'c', nodeId: 'ns=2;s=C', mode: 'poll', pollIntervalMs: 500, samplingIntervalMs: 100, queueSize: 1, deadband: { type: 'percent', value: 2 } },
        { tag: 'd', nodeId: 'ns=2;s=D', mode: 'subscribe', pollIntervalMs: 500, samplingIntervalMs: 100, queueSize: 1 },
        { tag: 'e', nodeId: 'ns=2;s=E', mode: 'subscribe', samplingIntervalMs: 100, queueSize: 1, deadband: { type: 'percent', value: 150 } },
      ],
    })]);
    expect(out).toEqual([
      expect.stringMatching(/^0\.tags\.0\.nodeId: "Motor\.Speed" is not a node id/),
      '0.tags.1.pollIntervalMs: mode poll needs pollIntervalMs',
      '0.tags.2.deadband.type: a percent deadband needs the server (mode subscribe); use an absolute deadband with mode poll',
      '0.tags.3.pollIntervalMs: pollIntervalMs is only used with mode poll; a subscription uses samplingIntervalMs',
      '0.tags.4.deadband.value: a percent deadband is at most 100 (got 150)',
    ]);
  });

  it('checks server names and timing', () => {
    const out = issues([server(), server({ publishingIntervalMs: 10000, sessionTimeoutMs: 60000, reconnect: { initialDelayMs: 5000, maxDelayMs: 2000 } })]);
    expect(out).toEqual([
      '1.name: server name "plc1" is already used by opcua[0]',
      expect.stringContaining('1.sessionTimeoutMs: sessionTimeoutMs (60000) must exceed publishingIntervalMs × keepAliveCount (100000)'),
      '1.reconnect.initialDelayMs: initialDelayMs (5000) is larger than maxDelayMs (2000)',
    ]);
  });

  it('runs inside check-config with file positions and defaults', () => {
    const text = [
      'gateway:', '  id: gw', '  stateDir: /tmp/lg', 'opcua:', '  - name: plc1', '    endpoint: opc.tcp://10.0.0.5:4840',
      '    security: { mode: None }', '    tags:', '      - tag: a', '        nodeId: ns=2;s=A', '      - tag: b', '        nodeId: s=B',
      '        mode: poll', '        pollIntervall: 100', '',
    ].join('\n');
    const r = loadConfigText(text, 'gw.yaml', {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.join('\n')).toMatch(/gw\.yaml:14:\d+ opcua\[0\]\.tags\[1\].*pollIntervall/);
    const fixed = loadConfigText(text.replace('pollIntervall', 'pollIntervalMs'), 'gw.yaml', {});
    if (!fixed.ok) throw new Error(fixed.errors.join('\n'));
    expect(fixed.config.opcua[0]).toMatchObject({
      security: { mode: 'None', trustOnFirstUse: false }, auth: { type: 'anonymous' }, publishingIntervalMs: 1000,
      tags: [{ mode: 'subscribe', samplingIntervalMs: 1000, queueSize: 10 }, { mode: 'poll', pollIntervalMs: 100 }],
    });
  });
});
