import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** The CLI as an engineer runs it: the built bin/lineguard in a child process (npm test builds dist/ first). */
const BIN = path.resolve('bin/lineguard');
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lineguard(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

describe('lineguard CLI', () => {
  it('--help lists every command', () => {
    const run = lineguard(['--help']);
    expect(run.status).toBe(0);
    for (const command of ['run', 'check-config', 'example-config', 'schema', 'demo', 'pki', 'browse', 'model']) {
      expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
  });

  it('<command> --help explains the command', () => {
    const run = lineguard(['check-config', '--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: lineguard check-config');
    expect(run.stdout).toContain('78');
  });

  it('an unknown command is a usage error (64)', () => {
    const run = lineguard(['frobnicate']);
    expect(run.status).toBe(64);
    expect(run.stderr).toContain('unknown command "frobnicate"');
  });

  it('example-config prints a config that check-config accepts with a one-line summary', () => {
    const example = lineguard(['example-config']);
    expect(example.status).toBe(0);
    const file = path.join(dir, 'example.yaml');
    writeFileSync(file, example.stdout);
    const check = lineguard(['check-config', file]);
    // The example points at the installed model (/opt/lineguard/models/...): on a machine without the package
    // that file is missing, which is a warning (the model comes up when the file appears), never an error.
    for (const line of check.stderr.split('\n').filter((l) => l.length > 0)) {
      expect(line).toMatch(/^.*example\.yaml:\d+:\d+ models\[0\]\.file: warning: \/opt\/lineguard\/models\/ai4i-fault\/model\.onnx does not exist \(yet\)/);
    }
    expect(check.status).toBe(0);
    expect(check.stdout.trim().split('\n')).toHaveLength(1);
    expect(check.stdout).toMatch(/OK — gateway press-line-1, 2 sources \(1 OPC UA, 1 MQTT\), 6 OPC UA tags \+ 1 MQTT value mapping, 1 model, alerts to site/);
  });

  it('check-config on a bad file exits 78 with every error as FILE:LINE:COL path: message and no stack trace', () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'gateway:\n  id: line-1\n  stateDri: /var/lib/x\nhttp:\n  port: high\n');
    const run = lineguard(['check-config', file]);
    expect(run.status).toBe(78);
    expect(run.stderr).toContain(`${file}:3:3 gateway.stateDri: unknown key "stateDri"; did you mean "stateDir"?`);
    expect(run.stderr).toContain(`${file}:5:9 http.port: expected an integer (a whole number), found string "high"`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('check-config reads $LINEGUARD_CONFIG when no file is given, and a missing file is a config error', () => {
    const run = lineguard(['check-config'], { LINEGUARD_CONFIG: path.join(dir, 'nope.yaml') });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain('nope.yaml:1:1 (file): cannot read the config file: no such file');
  });

  it('schema prints the JSON Schema, identical to the committed schema/lineguard.schema.json', () => {
    const run = lineguard(['schema']);
    expect(run.status).toBe(0);
    const schema = JSON.parse(run.stdout) as { properties: Record<string, unknown>; additionalProperties: boolean };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['gateway', 'opcua', 'mqtt', 'buffer', 'models', 'http']));
    expect(schema.additionalProperties).toBe(false);
    expect(run.stdout).toBe(readFileSync('schema/lineguard.schema.json', 'utf8'));
  });

  it('pki list works on the PKI of the config\'s state directory', () => {
    const file = path.join(dir, 'pki.yaml');
    writeFileSync(file, 'gateway: { id: g1, stateDir: ./pki-state }\n');
    const run = lineguard(['pki', 'list', '--config', file]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`PKI store ${path.join(dir, 'pki-state', 'pki')}`);
    const explicit = lineguard(['pki', 'list', '--state-dir', path.join(dir, 'other')]);
    expect(explicit.stdout).toContain(`PKI store ${path.join(dir, 'other', 'pki')}`);
  });

  it('run with a stateDir it cannot create exits 78 (not 70, which systemd would restart forever) and says why', () => {
    const blocker = path.join(dir, 'not-a-dir');
    writeFileSync(blocker, '');
    const file = path.join(dir, 'bad-state.yaml');
    writeFileSync(file, `gateway: { id: g1, stateDir: ${JSON.stringify(path.join(blocker, 'state'))} }\n`);
    const run = lineguard(['run', '--config', file]);
    expect(run.status).toBe(78);
    expect(run.stderr).toContain(`${file}: gateway.stateDir: cannot create ${path.join(blocker, 'state')} (ENOTDIR)`);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('run with a bad config exits 78 with the same lines as check-config', () => {
    const file = path.join(dir, 'bad-run.yaml');
    writeFileSync(file, 'gateway: { id: g1 }\nbuffer: { flushIntervalMs: fast }\n');
    const run = lineguard(['run', '--config', file]);
    expect(run.status).toBe(78);
    expect(run.stderr).toContain(`${file}:2:28 buffer.flushIntervalMs: expected an integer (a whole number), found string "fast"`);
  });
});
