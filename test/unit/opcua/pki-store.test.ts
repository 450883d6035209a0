import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pkiCommand } from '../../../src/connectors/opcua/index.js';
import { describeCertificate, ensurePkiLayout, normalizeThumbprint, PkiStore, readCertificateFile } from '../../../src/connectors/opcua/pki-store.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const PLC_A = path.join(FIXTURES, 'plc-a.pem');
const PLC_B = path.join(FIXTURES, 'plc-b.der');
const A_THUMB = 'f5ea6ff03a8675819da4e024fd89450cfba962ee';

let stateDir: string;
let pkiDir: string;

beforeEach(() => {
  stateDir = mkdtempSync(path.join(tmpdir(), 'lineguard-pki-'));
  pkiDir = path.join(stateDir, 'pki');
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await pkiCommand.run([...argv, '--state-dir', stateDir], { out: (l) => out.push(l), err: (l) => err.push(l), log: pino({ level: 'silent' }) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('PKI store', () => {
  it('describes PEM and DER certificates with the SHA-1 thumbprint OPC UA tools show', () => {
    const a = describeCertificate(readCertificateFile(PLC_A));
    expect(a).toMatchObject({ thumbprint: A_THUMB, commonName: 'PLC A', applicationUri: 'urn:acme:plc-a' });
    expect(a.subject).toContain('CN=PLC A');
    expect(describeCertificate(readCertificateFile(PLC_B))).toMatchObject({ commonName: 'PLC B', applicationUri: 'urn:acme:plc-b' });
    expect(normalizeThumbprint('F5:EA:6F F0')).toBe('f5ea6ff0');
  });

  it('moves a rejected certificate to trusted and back, by thumbprint or unique prefix', () => {
    const layout = ensurePkiLayout(pkiDir);
    copyFileSync(PLC_A, path.join(layout.rejected, `PLC A[${A_THUMB}].pem`));
    const store = new PkiStore(pkiDir);
    expect(store.trust('nothing-like-it')).toEqual({ status: 'not-found' });
    expect(store.trust(A_THUMB.slice(0, 8).toUpperCase())).toMatchObject({ status: 'moved', certificate: { thumbprint: A_THUMB } });
    expect(readdirSync(layout.rejected)).toEqual([]);
    expect(store.isTrusted(A_THUMB)).toBe(true);
    expect(store.trust(A_THUMB)).toMatchObject({ status: 'already' });
    expect(store.reject(A_THUMB)).toMatchObject({ status: 'moved' });
    expect(store.isRejected(A_THUMB)).toBe(true);
    expect(store.isTrusted(A_THUMB)).toBe(false);
  });

  it('a copy left in rejected/ is removed when trusting (rejected would win)', () => {
    const layout = ensurePkiLayout(pkiDir);
    copyFileSync(PLC_A, path.join(layout.trusted, 'a.pem'));
    copyFileSync(PLC_A, path.join(layout.rejected, 'a-again.pem'));
    expect(new PkiStore(pkiDir).trust(A_THUMB).status).toBe('moved');
    expect(readdirSync(layout.rejected)).toEqual([]);
    expect(readdirSync(layout.trusted)).toEqual(['a.pem']);
  });
});

describe('lineguard pki', () => {
  it('lists, trusts and rejects', async () => {
    const layout = ensurePkiLayout(pkiDir);
    copyFileSync(PLC_A, path.join(layout.rejected, `PLC A[${A_THUMB}].pem`));
    let r = await run('list');
    expect(r.code).toBe(0);
    expect(r.out).toContain('(none yet: it is created at the first connect)');
    expect(r.out).toContain(`Rejected certificates (1):\n  ${A_THUMB}  CN=PLC A, O=Acme  valid until 21`);
    expect(r.out).toContain('Trust one with: lineguard pki trust <thumbprint>');

    r = await run('trust', A_THUMB);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain(`trusted: CN=PLC A, O=Acme (thumbprint ${A_THUMB})`);
    r = await run('list');
    expect(r.out).toContain(`Trusted server certificates (1):\n  ${A_THUMB}`);

    r = await run('reject', 'f5ea6ff0');
    expect(r.code).toBe(0);
    expect(new PkiStore(pkiDir).isRejected(A_THUMB)).toBe(true);
  });

  it('adds a certificate file handed over by the PLC vendor', async () => {
    const r = await run('trust', PLC_B);
    expect(r.code).toBe(0);
    expect(r.out).toContain('trusted: CN=PLC B');
    expect(new PkiStore(pkiDir).trusted().map((c) => c.commonName)).toEqual(['PLC B']);
  });

  it('answers usage errors and unknown thumbprints with the right exit codes', async () => {
    expect((await run()).code).toBe(64);
    expect((await run('trust')).code).toBe(64);
    expect((await run('frobnicate', 'x')).code).toBe(64);
    const missing = await run('trust', 'abcdef0123456789');
    expect(missing.code).toBe(66);
    expect(missing.err).toContain('no rejected certificate with thumbprint abcdef0123456789');
    const out: string[] = [];
    expect(await pkiCommand.run(['list'], { out: (l) => out.push(l), err: (l) => out.push(l), log: pino({ level: 'silent' }) })).toBe(64);
    expect(existsSync(pkiDir)).toBe(false);
  });
});
