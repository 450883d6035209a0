import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/daemon/config/load.js';
import { exampleConfig } from '../../../src/daemon/config/example-config.js';

const MINIMAL = `gateway: { id: line-1, stateDir: /tmp/lineguard-test }\n`;

function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = loadConfigText(text, 'plant.yaml', env);
  if (result.ok) throw new Error('expected the config to be refused');
  return result.errors;
}

/** Each bad config with the exact line the engineer must see (file:line:col path: message). */
const BAD_CONFIGS: Array<{ name: string; text: string; expected: string[]; env?: NodeJS.ProcessEnv }> = [
  {
    name: 'misspelt key names its line and suggests the right name',
    text: `${MINIMAL}opcua:\n  - name: plc1\n    endpoint: opc.tcp://10.0.0.5:4840\n    tags:\n      - { tag: t1, nodeId: "ns=2;s=A", samplingIntervalMS: 100 }\n`,
    expected: ['plant.yaml:6:40 opcua[0].tags[0].samplingIntervalMS: unknown key "samplingIntervalMS"; did you mean "samplingIntervalMs"?'],
  },
  {
    name: 'unknown top-level section',
    text: `${MINIMAL}model:\n  - name: x\n`,
    expected: ['plant.yaml:2:1 model: unknown key "model"; did you mean "models"?'],
  },
  {
    name: 'wrong type says what was expected and what was found',
    text: `${MINIMAL}http: { port: nine }\n`,
    expected: ['plant.yaml:2:15 http.port: expected an integer (a whole number), found string "nine"'],
  },
  {
    name: 'YAML syntax error points at its line',
    text: `${MINIMAL}opcua:\n  - name: plc1\n   endpoint: "opc.tcp://x\n`,
    expected: [],
  },
  {
    name: 'enumeration lists allowed values and suggests one',
    text: `${MINIMAL}opcua:\n  - name: plc1\n    endpoint: opc.tcp://10.0.0.5:4840\n    security: { mode: SignEncrypt }\n    tags: [{ tag: t1, nodeId: "ns=2;s=A" }]\n`,
    expected: ['plant.yaml:5:23 opcua[0].security.mode: must be one of "None", "Sign", "SignAndEncrypt", found string "SignEncrypt"; did you mean "SignAndEncrypt"?'],
  },
  {
    name: 'missing required key',
    text: `${MINIMAL}opcua:\n  - name: plc1\n    tags: [{ tag: t1, nodeId: "ns=2;s=A" }]\n`,
    expected: ['plant.yaml:3:5 opcua[0].endpoint: missing required key "endpoint" (Endpoint URL.)'],
  },
  {
    name: 'missing gateway section',
    text: `log: { level: info }\n`,
    expected: ["plant.yaml:1:1 gateway: missing required key \"gateway\" (Who this gateway is and where it keeps its state.)"],
  },
  {
    name: 'bad duration',
    text: `${MINIMAL}buffer:\n  retention: { maxAge: 7 days }\n`,
    expected: ['plant.yaml:3:24 buffer.retention.maxAge: expected a duration such as 250ms, 30s, 5m, 12h or 7d, found string "7 days"'],
  },
  {
    name: 'bad size',
    text: `${MINIMAL}buffer:\n  retention: { maxSize: 2 gigs }\n`,
    expected: ['plant.yaml:3:25 buffer.retention.maxSize: expected a size such as 512MB or 2GB, found string "2 gigs"'],
  },
  {
    name: 'name with a space',
    text: `gateway: { id: press line 1 }\n`,
    expected: ['plant.yaml:1:16 gateway.id: expected a name of letters, digits, "_", "." or "-" (no spaces), starting with a letter or digit, found string "press line 1"'],
  },
  {
    name: 'endpoint with the wrong scheme',
    text: `${MINIMAL}opcua:\n  - name: plc1\n    endpoint: http://10.0.0.5:4840\n    tags: [{ tag: t1, nodeId: "ns=2;s=A" }]\n`,
    expected: ['plant.yaml:4:15 opcua[0].endpoint: string "http://10.0.0.5:4840" does not have the expected form /^opc\\.tcp:/// (Endpoint URL.)'],
  },
  {
    name: 'number below its minimum',
    text: `${MINIMAL}buffer:\n  flushIntervalMs: 1\n`,
    expected: ['plant.yaml:3:20 buffer.flushIntervalMs: must be >= 10, found number 1'],
  },
  {
    name: 'empty list where one item is needed',
    text: `${MINIMAL}models:\n  - name: m\n    file: m.onnx\n    inputs: []\n    alert: { raiseAbove: 0.8, clearBelow: 0.5 }\n`,
    expected: ['plant.yaml:5:13 models[0].inputs: must NOT have fewer than 1 items, found a list of 0'],
  },
  {
    name: 'environment variable not set',
    text: `${MINIMAL}mqtt:\n  brokers:\n    - { name: site, url: "mqtt://10.0.0.9:1883", username: gw, password: "\${env:MQTT_PASSWORD}" }\n`,
    expected: ['plant.yaml:4:74 mqtt.brokers[0].password: environment variable MQTT_PASSWORD is not set (referenced as ${env:MQTT_PASSWORD})'],
  },
  {
    name: 'credential file missing',
    text: `${MINIMAL}mqtt:\n  brokers:\n    - { name: site, url: "mqtt://10.0.0.9:1883", password: "\${file:/nonexistent/cred}" }\n`,
    expected: ['plant.yaml:4:60 mqtt.brokers[0].password: cannot read /nonexistent/cred (no such file) referenced as ${file:/nonexistent/cred}'],
  },
  {
    name: 'a list where a mapping belongs',
    text: `${MINIMAL}mqtt:\n  - broker: site\n`,
    expected: ['plant.yaml:3:3 mqtt: expected a mapping (key: value lines), found a list of 1'],
  },
  {
    name: 'duplicate key in YAML',
    text: `${MINIMAL}http: { port: 1 }\nhttp: { port: 2 }\n`,
    expected: [],
  },
  {
    name: 'secret of the wrong type is not echoed',
    text: `${MINIMAL}mqtt:\n  brokers:\n    - { name: site, url: "mqtt://10.0.0.9:1883", username: gw, password: 123456 }\n`,
    expected: ['plant.yaml:4:74 mqtt.brokers[0].password: expected a string, found (a secret, not shown)'],
  },
  {
    name: 'an empty HTTP host (which would listen on every interface)',
    text: `${MINIMAL}http: { host: "" }\n`,
    expected: ['plant.yaml:2:15 http.host: an empty host listens on every interface; write 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)'],
  },
  {
    name: 'two OPC UA tags with the same name',
    text: `${MINIMAL}opcua:\n  - name: plc1\n    endpoint: opc.tcp://10.0.0.5:4840\n    security: { mode: None, policy: None }\n    tags:\n      - { tag: t1, nodeId: "ns=2;s=A" }\n      - { tag: t1, nodeId: "ns=2;s=B" }\n`,
    expected: ['plant.yaml:8:16 opcua[0].tags[1].tag: tag name "t1" is already used by opcua[0].tags[0]'],
  },
];

describe('config errors: every bad config gets its exact line', () => {
  for (const bad of BAD_CONFIGS) {
    it(bad.name, () => {
      const errors = errorsOf(bad.text, bad.env);
      if (bad.expected.length > 0) {
        for (const line of bad.expected) expect(errors).toContain(line);
      }
      for (const line of errors) expect(line).toMatch(/^plant\.yaml:\d+:\d+ \S+: .+/);
    });
  }

  it('YAML syntax errors name the line of the fault', () => {
    const errors = errorsOf(`${MINIMAL}opcua:\n  - name: plc1\n   endpoint: "opc.tcp://x\n`);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/^plant\.yaml:(3|4):\d+ \(yaml\): YAML syntax error: /);
  });

  it('a duplicated key is a YAML error at the second occurrence', () => {
    const errors = errorsOf(`${MINIMAL}http: { port: 1 }\nhttp: { port: 2 }\n`);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^plant\.yaml:3:1 \(yaml\): YAML syntax error: Map keys must be unique/);
  });

  it('reports every error at once, sorted by line', () => {
    const errors = errorsOf(`gateway: { id: "a b", colour: red }\nhttp: { port: x }\nbuffer: { flushIntervalMs: 1 }\n`);
    expect(errors).toHaveLength(4);
    const lines = errors.map((e) => Number(e.split(':')[1]));
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('alias mistakes are config errors with a line, not crashes (which systemd would restart forever)', () => {
    expect(errorsOf(`${MINIMAL}http: { port: *port }\n`)).toEqual(['plant.yaml:2:15 (yaml): alias *port has no anchor &port before it (an anchor must come first)']);
    expect(errorsOf(`${MINIMAL}mqtt: &m\n  brokers:\n    - { name: site, url: "mqtt://h:1883", loop: *m }\n`))
      .toEqual(['plant.yaml:4:49 mqtt.brokers[0].loop: this alias refers to a mapping or list that contains it, so the value would never end']);
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const n of ['b', 'c', 'd', 'e']) levels.push(`${n}: &${n} [${Array(10).fill(`*${String.fromCharCode(n.charCodeAt(0) - 1)}`).join(', ')}]`);
    const bomb = errorsOf(`${MINIMAL}x-bomb:\n  ${levels.join('\n  ')}\n`);
    expect(bomb).toHaveLength(1);
    expect(bomb[0]).toMatch(/^plant\.yaml:4:\d+ \(yaml\): the aliases \(\*name\) expand to more than 100 copies; write the values out instead$/);
    expect(errorsOf(`gateway: { id: g1, stateDir: !!binary aGVsbG8= }\n`))
      .toEqual(['plant.yaml:1:39 gateway.stateDir: a typed YAML value (such as !!binary) is not a config value here: write a plain string, number, list or mapping']);
  });

  it('aliases that are used correctly still work', () => {
    const anchored = loadConfigText(`gateway: { id: &id g1, stateDir: /tmp/lg }\nmqtt:\n  brokers: [{ name: *id, url: "mqtt://h:1883" }]\n`, 'plant.yaml', {});
    if (!anchored.ok) throw new Error(anchored.errors.join('\n'));
    expect(anchored.config.mqtt.brokers[0]!.name).toBe('g1');
  });

  it('an empty file says how to start', () => {
    expect(errorsOf('# nothing yet\n')).toEqual(['plant.yaml:1:1 (top level): the file is empty; start from `lineguard example-config`']);
  });
});

describe('config loading', () => {
  it('fills defaults and resolves secrets, returning them for redaction', () => {
    const text = `${MINIMAL}mqtt:\n  brokers:\n    - { name: site, url: "mqtt://10.0.0.9:1883", username: gw, password: "\${env:PW}" }\n`;
    const result = loadConfigText(text, '/etc/lineguard/plant.yaml', { PW: 's3cret-value' });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.mqtt.brokers[0]!.password).toBe('s3cret-value');
    expect(result.secrets).toEqual(['s3cret-value']);
    expect(result.config.http).toEqual({ enabled: true, host: '127.0.0.1', port: 9464, statusPage: { enabled: true } });
    expect(result.config.buffer.retention).toEqual({ maxAge: '7d', maxSize: '2GB' });
    expect(result.baseDir).toBe('/etc/lineguard');
  });

  it('a section whose lines are all commented out takes its defaults', () => {
    const result = loadConfigText(`${MINIMAL}log:\n  # level: debug\nhttp:\n`, 'plant.yaml', {});
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.config.log.level).toBe('info');
  });

  it('a relative ${file:} path is read from the config file\'s directory', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-secret-'));
    writeFileSync(path.join(dir, 'mqtt-password'), 'from-a-file\n');
    const text = `${MINIMAL}mqtt:\n  brokers:\n    - { name: site, url: "mqtt://10.0.0.9:1883", username: gw, password: "\${file:mqtt-password}" }\n`;
    const result = loadConfigText(text, path.join(dir, 'plant.yaml'), {});
    rmSync(dir, { recursive: true, force: true });
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.config.mqtt.brokers[0]!.password).toBe('from-a-file');
  });

  it('an empty TLS file path is a config error, not a connect-time EISDIR', () => {
    const errors = errorsOf(`${MINIMAL}mqtt:\n  brokers:\n    - { name: site, url: "mqtts://10.0.0.9:8883", tls: { caFile: "" } }\n`);
    expect(errors).toContain('plant.yaml:4:66 mqtt.brokers[0].tls.caFile: must NOT have fewer than 1 characters, found string ""');
  });

  it('$${ escapes a literal ${', () => {
    const result = loadConfigText(`gateway: { id: g1, stateDir: "/tmp/$\${x}" }\n`, 'plant.yaml', {});
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.config.gateway.stateDir).toBe('/tmp/${x}');
  });

  it('the generated example config passes', () => {
    const result = loadConfigText(exampleConfig(), 'example.yaml', {});
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.config.opcua[0]!.tags.length).toBeGreaterThan(3);
    expect(result.config.models.length).toBe(1);
  });
});
