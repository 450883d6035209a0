import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { browseCommand } from '../../../src/connectors/opcua/index.js';
import { loadConfigText } from '../../../src/daemon/config/load.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { captureIo, makeContext, type TestContext } from './harness.js';

let server: OpcuaTestServer;
let t: TestContext;

beforeAll(async () => {
  t = makeContext();
  server = await OpcuaTestServer.start({
    securityModes: ['None'],
    namespaceUri: 'urn:acme:press-line;v=2',
    variables: [
      { name: 'Torque', dataType: 'Double', value: 12.5, folder: 'Line 1/Press' },
      { name: 'Running', dataType: 'Boolean', value: true, folder: 'Line 1/Press' },
      { name: 'Pressure', dataType: 'Float', value: 3, folder: 'Line 1/Press', euRange: { low: 0, high: 10 } },
      { name: 'Count', dataType: 'Int64', value: 123456789012, folder: 'Line 1' },
      { name: 'Recipe', dataType: 'String', value: 'Steel: 2mm', folder: 'Line 1' },
      { name: 'Temps', dataType: 'Double', value: [1, 2, 3], folder: 'Line 1' },
      { name: 'Blob', dataType: 'ByteString', value: Buffer.from('x'), folder: 'Line 1' },
      { name: 'Line 1.Torque', dataType: 'Double', value: 1 },
    ],
  });
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  t?.cleanup();
});

async function browse(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo(t.logs.logger);
  const code = await browseCommand.run([server.endpoint, '--state-dir', t.stateDir, ...args], io);
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
}

describe('lineguard browse', () => {
  it('prints node id, browse path, data type and current value of every variable', async () => {
    const { code, stdout } = await browse('--root', `nsu=${server.namespaceUri};s=Simulation`);
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(/^NODE ID\s+PATH\s+TYPE\s+VALUE$/);
    const torque = lines.find((l) => l.includes('Line 1/Press/Torque'))!;
    expect(torque).toContain(`nsu=${server.namespaceUri};s=Torque`);
    expect(torque).toMatch(/Double\s+12\.5$/);
    expect(lines.find((l) => l.includes('Line 1/Temps'))).toMatch(/Double\[3\]\s+array of 3 Double: add arrayIndex/);
    expect(stdout).not.toContain('EURange'); // properties are metadata, not tags
  });

  it('--yaml prints a server entry whose tags block passes check-config', async () => {
    const { code, stdout, stderr } = await browse('--yaml', '--name', 'press1');
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const config = `gateway:\n  id: gw1\n  stateDir: ${t.stateDir}\nopcua:\n${stdout}\n`;
    const loaded = loadConfigText(config, 'lineguard.yaml', {});
    if (!loaded.ok) throw new Error(`check-config refused the browse output:\n${loaded.errors.join('\n')}\n---\n${config}`);
    const server0 = loaded.config.opcua[0]!;
    expect(server0).toMatchObject({ name: 'press1', endpoint: server.endpoint, security: { mode: 'None', policy: 'None' } });
    const byTag = new Map(server0.tags.map((tag) => [tag.tag, tag.nodeId]));
    expect(byTag.get('press1.Simulation.Line_1.Press.Torque')).toBe(`nsu=${server.namespaceUri};s=Torque`);
    expect(byTag.get('press1.Simulation.Line_1.Count')).toBe(`nsu=${server.namespaceUri};s=Count`);
    expect(byTag.get('press1.Simulation.Line_1.Recipe')).toBeDefined();
    expect(byTag.get('press1.Simulation.Line_1.Press.Pressure')).toBeDefined();
    // Same sanitized path twice: made unique.
    expect(byTag.get('press1.Simulation.Line_1.Torque')).toBe(`nsu=${server.namespaceUri};s=Line 1.Torque`);
    // Arrays and unsupported types are comments saying why.
    expect([...byTag.values()].some((id) => id.endsWith('s=Temps') || id.endsWith('s=Blob'))).toBe(false);
    expect(stdout).toMatch(/# skipped Simulation\/Line 1\/Temps .*add arrayIndex/);
    expect(stdout).toMatch(/# skipped Simulation\/Line 1\/Blob .*ByteString values are not supported/);
    expect((parse(`opcua:\n${stdout}`) as { opcua: unknown[] }).opcua).toHaveLength(1);
  });

  it('refuses bad arguments with a usage error and a missing server with "unavailable"', async () => {
    expect((await browse('--depth', 'zero')).code).toBe(64);
    expect((await browse('--security', 'SignAndEncrypt:None')).code).toBe(64);
    expect((await browse('--user', 'bob')).stderr).toContain('--user needs --password-env VAR');
    const io = captureIo(t.logs.logger);
    expect(await browseCommand.run(['opc.tcp://127.0.0.1:1', '--state-dir', t.stateDir], io)).toBe(69);
    expect(io.stderr.join('\n')).toContain('cannot reach opc.tcp://127.0.0.1:1');
  });
});
