import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../../../src/core/config-types.js';
import { loadConfigFile, loadConfigText, type LoadResult } from '../../../src/daemon/config/load.js';
import { ConfigSchema } from '../../../src/daemon/config/schema.js';

const MINIMAL = `gateway: { id: line-1, stateDir: /tmp/lineguard-test }\n`;
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-bounds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorsOf(result: LoadResult): string[] {
  if (result.ok) throw new Error('expected the config to be refused');
  return result.errors;
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const started = performance.now();
  const value = fn();
  return { value, ms: performance.now() - started };
}

/** Every number field of the schema, with its key path (arrays as []). */
function numberFields(schema: unknown, at: string, out: Array<{ at: string; s: Record<string, unknown> }> = []) {
  if (schema === null || typeof schema !== 'object') return out;
  const s = schema as Record<string, unknown>;
  if (s.type === 'number' || s.type === 'integer') out.push({ at, s });
  for (const [key, child] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) numberFields(child, at === '' ? key : `${at}.${key}`, out);
  if (s.items) numberFields(s.items, `${at}[]`, out);
  for (const branch of (s.anyOf ?? []) as unknown[]) numberFields(branch, at, out);
  return out;
}

describe('every number in the schema has a stated, finite range', () => {
  const fields = numberFields(ConfigSchema, '').filter(({ s }) => s.const === undefined);

  it('has a minimum and a maximum, both finite', () => {
    expect(fields.length).toBeGreaterThan(50);
    const unbounded = fields.filter(({ s }) => !Number.isFinite(s.minimum) || !Number.isFinite(s.maximum)).map((f) => f.at);
    expect(unbounded).toEqual([]);
  });

  it('timers (…Ms) are at most 2^31−1 ms, the longest timer Node.js runs; maxSkewMs is a comparison, not a timer', () => {
    const tooLong = fields.filter(({ at, s }) => /Ms$/.test(at) && !at.endsWith('maxSkewMs') && (s.maximum as number) > MAX_TIMER_MS);
    expect(tooLong.map((f) => f.at)).toEqual([]);
  });

  it('refuses .nan, .inf and -.inf with the line and what was found', () => {
    const rule = (value: string) => `${MINIMAL}models:\n  - { name: m, file: m.onnx, inputs: [a], alert: { raiseAbove: ${value}, clearBelow: 0.5 } }\n`;
    expect(errorsOf(loadConfigText(rule('.nan'), 'plant.yaml', {})))
      .toEqual(['plant.yaml:3:64 models[0].alert.raiseAbove: expected a finite number, found .nan (not a number)']);
    expect(errorsOf(loadConfigText(rule('.inf'), 'plant.yaml', {})))
      .toEqual(['plant.yaml:3:64 models[0].alert.raiseAbove: expected a finite number, found .inf (infinity)']);
    expect(errorsOf(loadConfigText(`${MINIMAL}http: { port: -.inf }\n`, 'plant.yaml', {})))
      .toEqual(['plant.yaml:2:15 http.port: expected a finite number, found -.inf (infinity)']);
  });

  it('refuses a timer beyond 2^31−1 ms (it would fire every 1 ms) and an outbox too small to hold an alert', () => {
    const everyMs = errorsOf(loadConfigText(`${MINIMAL}models:\n  - { name: m, file: m.onnx, inputs: [a], schedule: { everyMs: 99999999999999999999 }, alert: { raiseAbove: 1, clearBelow: 0 } }\n`, 'plant.yaml', {}));
    expect(everyMs).toEqual(['plant.yaml:3:64 models[0].schedule.everyMs: must be <= 86400000, found number 100000000000000000000']);
    const outbox = errorsOf(loadConfigText(`${MINIMAL}buffer: { outbox: { maxSize: 0GB } }\n`, 'plant.yaml', {}));
    expect(outbox).toEqual(['plant.yaml:2:30 buffer.outbox.maxSize: must be at least 1MB, room for about 250 alerts (is 0GB); below that every alert would be dropped']);
    const huge = errorsOf(loadConfigText(`${MINIMAL}buffer: { retention: { maxSize: ${'9'.repeat(400)}GB, maxAge: ${'9'.repeat(400)}d } }\n`, 'plant.yaml', {}));
    expect(huge.map((l) => l.replace(/\(is \d+/, '(is N'))).toEqual([
      'plant.yaml:2:33 buffer.retention.maxSize: must be at most 100TB (is N' + 'GB)',
      'plant.yaml:2:445 buffer.retention.maxAge: must be at most 3650d (is N' + 'd)',
    ]);
  });

  it('refuses an OPC UA silence timeout beyond the longest timer', () => {
    const errors = errorsOf(loadConfigText(
      `${MINIMAL}opcua:\n  - { name: p, endpoint: "opc.tcp://h:4840", publishingIntervalMs: 600000, keepAliveCount: 10000, silenceTimeoutIntervals: 100, sessionTimeoutMs: 2147483647, tags: [{ tag: t, nodeId: "ns=2;s=A" }] }\n`,
      'plant.yaml', {},
    ));
    expect(errors).toHaveLength(2);
    expect(errors.find((l) => l.includes('sessionTimeoutMs:'))).toMatch(/^plant\.yaml:3:\d+ opcua\[0\]\.sessionTimeoutMs: sessionTimeoutMs \(2147483647\) must exceed/);
    expect(errors.find((l) => l.includes('silenceTimeoutIntervals:'))).toMatch(/^plant\.yaml:3:\d+ opcua\[0\]\.silenceTimeoutIntervals: .* must be at most 2147483647 ms/);
  });
});

describe('the config file and every ${file:} are regular files read with a bound', () => {
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const big = path.join(dir, 'big.yaml');
  writeFileSync(big, `${MINIMAL}# ${'x'.repeat(5 * 1024 * 1024)}\n`);
  const bigSecret = path.join(dir, 'big-secret');
  writeFileSync(bigSecret, 'x'.repeat(65 * 1024));
  mkdirSync(path.join(dir, 'a-dir'));

  it.each([
    ['a FIFO', fifo, 'not a regular file (a FIFO)'],
    ['/dev/zero', '/dev/zero', 'not a regular file (a character device)'],
    ['/dev/urandom', '/dev/urandom', 'not a regular file (a character device)'],
    ['a directory', path.join(dir, 'a-dir'), 'not a regular file (a directory)'],
    ['a 5 MB file', big, 'larger than 4 MiB'],
  ])('config file: %s is refused at once', (_name, file, why) => {
    const { value, ms } = timed(() => loadConfigFile(file, {}));
    expect(errorsOf(value)[0]).toMatch(new RegExp(`^${file}:1:1 \\(file\\): cannot read the config file: ${why.replace(/[()]/g, '\\$&')}`));
    expect(ms).toBeLessThan(1000);
  });

  it.each([
    ['a FIFO', fifo, 'not a regular file (a FIFO)'],
    ['/dev/zero', '/dev/zero', 'not a regular file (a character device)'],
    ['/dev/urandom', '/dev/urandom', 'not a regular file (a character device)'],
    ['a 65 KB file', bigSecret, 'larger than 64 KiB (66560 bytes)'],
  ])('${file:} of %s is refused at once', (_name, file, why) => {
    const text = `${MINIMAL}mqtt:\n  brokers: [{ name: site, url: "mqtt://h:1883", username: u, password: "\${file:${file}}" }]\n`;
    const { value, ms } = timed(() => loadConfigText(text, path.join(dir, 'plant.yaml'), {}));
    expect(errorsOf(value)).toEqual([`${path.join(dir, 'plant.yaml')}:3:72 mqtt.brokers[0].password: cannot read ${file} (${why}) referenced as \${file:${file}}`]);
    expect(ms).toBeLessThan(1000);
  });

  it('TLS and OPC UA certificate and key files that are devices or FIFOs are refused', () => {
    const cert = path.join(dir, 'client.pem');
    writeFileSync(cert, '-----BEGIN CERTIFICATE-----\n');
    const text = `${MINIMAL}mqtt:\n  brokers: [{ name: site, url: "mqtts://h:8883", tls: { caFile: /dev/zero, certFile: ${cert}, keyFile: ${fifo} } }]\n` +
      `opcua:\n  - { name: p, endpoint: "opc.tcp://h:4840", auth: { type: certificate, certificateFile: /dev/urandom, privateKeyFile: ${fifo} }, tags: [{ tag: t, nodeId: "ns=2;s=A" }] }\n`;
    const { value, ms } = timed(() => loadConfigText(text, 'plant.yaml', {}));
    const errors = errorsOf(value).map((l) => l.replace(/^plant\.yaml:\d+:\d+ /, ''));
    expect(errors).toEqual([
      'mqtt.brokers[0].tls.caFile: /dev/zero is not a regular file (a device, FIFO or socket)',
      `mqtt.brokers[0].tls.keyFile: ${fifo} is not a regular file (a device, FIFO or socket)`,
      'opcua[0].auth.certificateFile: /dev/urandom is not a regular file (a device, FIFO or socket)',
      `opcua[0].auth.privateKeyFile: ${fifo} is not a regular file (a device, FIFO or socket)`,
    ]);
    expect(ms).toBeLessThan(1000);
  });

  it('a model file that is a FIFO is refused before it is opened', () => {
    const text = `${MINIMAL}models:\n  - { name: m, file: ${fifo}, inputs: [a], alert: { raiseAbove: 1, clearBelow: 0 } }\n`;
    const { value, ms } = timed(() => loadConfigText(text, 'plant.yaml', {}));
    expect(errorsOf(value)).toEqual([`plant.yaml:3:22 models[0].file: ${fifo} is not a regular file (a device, FIFO or socket)`]);
    expect(ms).toBeLessThan(1000);
  });
});

describe('secret references', () => {
  const broker = (password: string) => `${MINIMAL}mqtt:\n  brokers: [{ name: site, url: "mqtt://h:1883", username: u, password: "${password}" }]\n`;

  it('an unknown or unclosed reference is an error, never the literal password', () => {
    expect(errorsOf(loadConfigText(broker('${nope:X}'), 'plant.yaml', {})))
      .toEqual(['plant.yaml:3:72 mqtt.brokers[0].password: unknown reference ${nope:X}; write ${env:NAME} or ${file:/path} (write $${ for a literal ${)']);
    expect(errorsOf(loadConfigText(broker('${env:X'), 'plant.yaml', { X: 'x' })))
      .toEqual(['plant.yaml:3:72 mqtt.brokers[0].password: unclosed reference ${env:X: end it with "}" (write $${ for a literal ${)']);
    expect(errorsOf(loadConfigText(broker('pre${PW}post'), 'plant.yaml', { PW: 'x' })))
      .toEqual(['plant.yaml:3:72 mqtt.brokers[0].password: unknown reference ${PW}; write ${env:NAME} or ${file:/path} (write $${ for a literal ${)']);
  });

  it('an inline secret works and is a warning that says where to put it', () => {
    const result = loadConfigText(broker('hunter2'), 'plant.yaml', {});
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.config.mqtt.brokers[0]!.password).toBe('hunter2');
    expect(result.secrets).toEqual(['hunter2']);
    expect(result.warnings).toEqual([
      'plant.yaml:3:72 mqtt.brokers[0].password: warning: a secret written in the config file (readable by whoever reads the file, and kept in backups); put it in ${file:/run/credentials/lineguard.service/NAME} (systemd LoadCredential=) or ${env:NAME}',
    ]);
    const referenced = loadConfigText(broker('${env:PW}'), 'plant.yaml', { PW: 'hunter2' });
    expect(referenced.ok && referenced.warnings).toEqual([]);
  });
});

describe('warnings and message form', () => {
  it('an http.host that is not loopback is a warning', () => {
    const result = loadConfigText(`${MINIMAL}http: { host: 0.0.0.0 }\n`, 'plant.yaml', {});
    expect(result.ok && result.warnings).toEqual([
      'plant.yaml:2:15 http.host: warning: 0.0.0.0 is not a loopback address: /metrics and /healthz are reachable from the network (keep 127.0.0.1 unless a firewall protects the port)',
    ]);
    for (const host of ['127.0.0.1', '127.0.1.1', 'localhost', '::1']) {
      const ok = loadConfigText(`${MINIMAL}http: { host: "${host}" }\n`, 'plant.yaml', {});
      expect(ok.ok && ok.warnings, host).toEqual([]);
    }
    const off = loadConfigText(`${MINIMAL}http: { enabled: false, host: 0.0.0.0 }\n`, 'plant.yaml', {});
    expect(off.ok && off.warnings).toEqual([]);
  });

  it('YAML errors do not end with a dangling colon, and a key with a line break stays on its line', () => {
    const yaml = errorsOf(loadConfigText(`${MINIMAL}a: b: c\n`, 'plant.yaml', {}));
    expect(yaml).toEqual(['plant.yaml:2:4 (yaml): YAML syntax error: Nested mappings are not allowed in compact mappings']);
    const key = errorsOf(loadConfigText(`${MINIMAL}http: { "ho\\nst": x }\n`, 'plant.yaml', {}));
    expect(key).toHaveLength(1);
    expect(key[0]).toMatch(/^plant\.yaml:2:9 http\.ho\\nst: unknown key "ho\\nst"/);
    expect(key[0]).not.toContain('\n');
  });
});
