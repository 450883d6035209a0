import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browseCommand, OpcuaSource, pkiCommand } from '../../../src/connectors/opcua/index.js';
import { loadConfigText } from '../../../src/daemon/config/load.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { captureIo, makeContext, metricValue, serverConfig, waitFor } from './harness.js';

const PASSWORD = 'pa55-w0rd!never-logged';
// node-opcua puts its default PKI under $XDG_CONFIG_HOME (else ~/.config) when a client is not handed a certificate
// manager. Point it at an empty folder before node-opcua loads, and check at the end that nothing appeared there.
const XDG = mkdtempSync(path.join(tmpdir(), 'lineguard-xdg-'));
process.env.XDG_CONFIG_HOME = XDG;
let server: OpcuaTestServer;

beforeAll(async () => {
  server = await OpcuaTestServer.start({
    securityModes: ['Sign', 'SignAndEncrypt'],
    users: { operator: PASSWORD },
    variables: [{ name: 'Secret', dataType: 'Double', value: 42 }],
  });
}, 60_000);

afterAll(async () => {
  await server?.dispose();
  rmSync(XDG, { recursive: true, force: true });
});

const secureConfig = (password: string, overrides: Parameters<typeof serverConfig>[2] = {}): ReturnType<typeof serverConfig> =>
  serverConfig(server.endpoint, [{ tag: 'secret', nodeId: server.stableNodeId('Secret') }], {
    security: { mode: 'SignAndEncrypt', policy: 'Basic256Sha256', trustOnFirstUse: false },
    auth: { type: 'username', username: 'operator', password },
    ...overrides,
  });

describe('OpcuaSource security', () => {
  it('refuses an unknown server certificate until `lineguard pki trust`, then connects with SignAndEncrypt + username', async () => {
    const t = makeContext();
    const source = new OpcuaSource(secureConfig(PASSWORD), t.ctx);
    const thumbprint = server.certificateThumbprint();
    try {
      await source.start(new AbortController().signal);
      const health = source.health();
      expect(health.state).toBe('down');
      expect(health.reason).toContain(`is not trusted; to trust it run: lineguard pki trust ${thumbprint}`);
      expect(health.details?.untrustedServerCertificate).toMatchObject({ thumbprint, command: `lineguard pki trust --state-dir ${t.stateDir} ${thumbprint}` });

      // The PKI lives in the state dir, in the shared layout; the refused certificate waits in rejected/.
      const pki = path.join(t.stateDir, 'pki');
      expect(existsSync(path.join(pki, 'own', 'certs', 'client_certificate.pem'))).toBe(true);
      expect(existsSync(path.join(pki, 'own', 'private', 'private_key.pem'))).toBe(true);
      expect(readdirSync(path.join(pki, 'rejected')).some((f) => f.includes(thumbprint))).toBe(true);
      expect(readdirSync(path.join(pki, 'trusted', 'certs'))).toEqual([]);

      // Several attempts, one log line for the thumbprint, with the subject and the command.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await metricValue(t.registry, 'lineguard_opcua_connect_failures_total', { server: 'plc', kind: 'certificate' })).toBeGreaterThanOrEqual(2);
      const refusals = t.logs.lines.filter((l) => l.thumbprint === thumbprint && l.level === 50);
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toMatchObject({ command: `lineguard pki trust --state-dir ${t.stateDir} ${thumbprint}`, status: 'BadCertificateUntrusted' });
      expect(String(refusals[0]!.subject)).toContain('Lineguard test server');
      expect(source.health().state).toBe('down');

      const io = captureIo(t.logs.logger);
      expect(await pkiCommand.run(['list', '--state-dir', t.stateDir], io)).toBe(0);
      const listing = io.stdout.join('\n');
      expect(listing).toMatch(new RegExp(`Rejected certificates \\(1\\):\\n  ${thumbprint}`));
      expect(listing).toContain('Trusted server certificates (0)');
      expect(listing).toMatch(/Own certificate[^\n]*\n {2}[0-9a-f]{40} {2}[^\n]*CN=lineguard@/);
      expect(listing).toContain('O=Lineguard');

      // `lineguard pki trust` from another process while the source runs: picked up at the next attempt.
      expect(await pkiCommand.run(['trust', thumbprint.slice(0, 12), '--state-dir', t.stateDir], io)).toBe(0);
      expect(io.stdout.at(-2)).toContain(`trusted: `);
      await waitFor(() => source.health().state === 'up', 'connection after pki trust', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}; health: ${JSON.stringify(source.health())}; last log lines: ${t.logs.raw.slice(-8).join('\n')}`);
      });
      await waitFor(() => t.samples.some((s) => s.tag === 'secret' && s.value === 42), 'a value over SignAndEncrypt');
      expect(source.health().details).toMatchObject({ securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', session: 'connected' });
      expect(t.logs.messages().some((m) => m === 'server certificate is trusted now')).toBe(true);
    } finally {
      await source.stop();
      t.cleanup();
    }
    for (const line of t.logs.raw) expect(line).not.toContain(PASSWORD);
  });

  it('a trusted certificate is not refused again because a racing attempt left a copy in rejected/', async () => {
    const t = makeContext();
    const source = new OpcuaSource(secureConfig(PASSWORD), t.ctx);
    const thumbprint = server.certificateThumbprint();
    try {
      await source.start(new AbortController().signal);
      expect(source.health().state).toBe('down');
      const rejected = path.join(t.stateDir, 'pki', 'rejected');
      const file = readdirSync(rejected).find((f) => f.includes(thumbprint))!;
      // What an attempt refused while `pki trust` runs leaves behind: the certificate in trusted/ AND rejected/.
      copyFileSync(path.join(rejected, file), path.join(t.stateDir, 'pki', 'trusted', 'certs', file));
      await waitFor(() => source.health().state === 'up', 'connection with a stale rejected copy', 15_000);
      expect(readdirSync(rejected).some((f) => f.includes(thumbprint))).toBe(false);
    } finally {
      await source.stop();
      t.cleanup();
    }
  });

  it('says clearly that the password is wrong, and never logs it', async () => {
    const t = makeContext();
    const wrong = 'wr0ng-pa55word';
    const source = new OpcuaSource(secureConfig(wrong, { security: { mode: 'SignAndEncrypt', policy: 'Basic256Sha256', trustOnFirstUse: true } }), t.ctx);
    try {
      await source.start(new AbortController().signal);
      const health = source.health();
      expect(health.state).toBe('down');
      expect(health.reason).toContain('the server refused user "operator": wrong username or password (BadUserAccessDenied)');
      expect(await metricValue(t.registry, 'lineguard_opcua_connect_failures_total', { server: 'plc', kind: 'auth' })).toBe(1);
      const warning = t.logs.lines.find((l) => l.level === 40 && String(l.msg).startsWith('connect failed'));
      expect(warning).toMatchObject({ kind: 'auth' });
      // More attempts follow; the trustOnFirstUse warning is said once per start, not at each of them.
      const attempts = () => t.logs.lines.filter((l) => String(l.msg).startsWith('connect failed')).length;
      await waitFor(() => attempts() >= 3, 'three failed attempts', 15_000);
      expect(t.logs.lines.filter((l) => String(l.msg).startsWith('trustOnFirstUse is ON'))).toHaveLength(1);
    } finally {
      await source.stop();
      t.cleanup();
    }
    for (const line of t.logs.raw) {
      expect(line).not.toContain(wrong);
      expect(line).not.toContain(PASSWORD);
    }
  });

  it('trusts on first use only when asked, loudly, and with any of the modern policies', async () => {
    const t = makeContext();
    const source = new OpcuaSource(secureConfig(PASSWORD, { security: { mode: 'Sign', policy: 'Aes256_Sha256_RsaPss', trustOnFirstUse: true } }), t.ctx);
    try {
      await source.start(new AbortController().signal);
      expect(source.health().state).toBe('up');
      expect(t.logs.lines.some((l) => l.level === 40 && String(l.msg).startsWith('TRUST ON FIRST USE') && l.thumbprint === server.certificateThumbprint())).toBe(true);
      expect(readdirSync(path.join(t.stateDir, 'pki', 'trusted', 'certs')).some((f) => f.includes(server.certificateThumbprint()))).toBe(true);
      await waitFor(() => t.samples.some((s) => s.tag === 'secret'), 'a value over Sign / Aes256_Sha256_RsaPss');
    } finally {
      await source.stop();
      t.cleanup();
    }
  });

  it('trust on first use refuses a server whose certificate changed (same application URI, new key)', async () => {
    const t = makeContext();
    const impostor = await OpcuaTestServer.start({ securityModes: ['SignAndEncrypt'], users: { operator: PASSWORD }, variables: [{ name: 'Secret', dataType: 'Double', value: 1 }] });
    const tofu = { security: { mode: 'SignAndEncrypt' as const, policy: 'Basic256Sha256' as const, trustOnFirstUse: true } };
    const first = new OpcuaSource(secureConfig(PASSWORD, tofu), t.ctx);
    const second = new OpcuaSource({ ...secureConfig(PASSWORD, tofu), endpoint: impostor.endpoint, name: 'plc2' }, t.ctx);
    try {
      await first.start(new AbortController().signal);
      expect(first.health().state).toBe('up');
      await second.start(new AbortController().signal);
      const health = second.health();
      expect(health.state).toBe('down');
      expect(health.reason).toContain(`is not the one trusted for this server (${server.certificateThumbprint()})`);
      expect(health.reason).toContain(`lineguard pki trust ${impostor.certificateThumbprint()}`);
    } finally {
      await first.stop();
      await second.stop();
      await impostor.dispose();
      t.cleanup();
    }
  });

  it('authenticates with an X.509 user certificate', async () => {
    const t = makeContext();
    const opcua = await import('node-opcua');
    const userPki = path.join(t.stateDir, 'user-cert');
    const cm = new opcua.OPCUACertificateManager({ rootFolder: userPki, disableFileWatchers: true });
    await cm.initialize();
    const certificateFile = path.join(userPki, 'operator.pem');
    await cm.createSelfSignedCertificate({
      applicationUri: 'urn:lineguard:test:operator', subject: '/CN=operator', dns: [], outputFile: certificateFile, startDate: new Date(), validity: 30,
    });
    await cm.dispose();
    const source = new OpcuaSource(secureConfig(PASSWORD, {
      security: { mode: 'SignAndEncrypt', policy: 'Basic256Sha256', trustOnFirstUse: true },
      auth: { type: 'certificate', certificateFile, privateKeyFile: cm.privateKey },
    }), t.ctx);
    try {
      await source.start(new AbortController().signal);
      expect(source.health()).toMatchObject({ state: 'up' });
      await waitFor(() => t.samples.some((s) => s.tag === 'secret'), 'a value with certificate authentication');
    } finally {
      await source.stop();
      t.cleanup();
    }
  });

  it('browse reaches a SignAndEncrypt server with a username; --yaml refers to the password by variable', async () => {
    const t = makeContext();
    const env = 'LINEGUARD_TEST_PLC_PASSWORD';
    process.env[env] = PASSWORD;
    const args = [server.endpoint, '--state-dir', t.stateDir, '--security', 'SignAndEncrypt', '--user', 'operator', '--password-env', env, '--yaml', '--name', 'secure'];
    try {
      const refused = captureIo(t.logs.logger);
      expect(await browseCommand.run(args, refused)).toBe(69);
      expect(refused.stderr.join('\n')).toContain(`lineguard pki trust ${server.certificateThumbprint()}`);
      expect(refused.stderr.join('\n')).toContain('--trust-server');

      const io = captureIo(t.logs.logger);
      expect(await browseCommand.run([...args, '--trust-server'], io)).toBe(0);
      const yaml = io.stdout.join('\n');
      expect(yaml).toContain(`password: \${env:${env}}`);
      expect(yaml).not.toContain(PASSWORD);
      const loaded = loadConfigText(`gateway:\n  id: gw\n  stateDir: ${t.stateDir}\nopcua:\n${yaml}\n`, 'lineguard.yaml', { [env]: PASSWORD });
      if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
      expect(loaded.config.opcua[0]).toMatchObject({
        security: { mode: 'SignAndEncrypt', policy: 'Basic256Sha256' },
        auth: { type: 'username', username: 'operator', password: PASSWORD },
        tags: [{ tag: 'secure.Simulation.Secret', nodeId: server.stableNodeId('Secret') }],
      });
    } finally {
      delete process.env[env];
      t.cleanup();
    }
    for (const line of t.logs.raw) expect(line).not.toContain(PASSWORD);
  });

  it('never creates the node-opcua default PKI in the home directory', () => {
    expect(existsSync(path.join(XDG, 'node-opcua-default-nodejs'))).toBe(false);
    expect(readdirSync(XDG)).toEqual([]);
  });
});
