import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, type CliCommand, type CliIo } from '../../core/cli-command.js';
import { PkiStore, type StoredCertificate } from './pki-store.js';

const USAGE = `Usage: lineguard pki list
       lineguard pki trust <thumbprint | certificate file>
       lineguard pki reject <thumbprint>

Manages the OPC UA certificate store in <gateway.stateDir>/pki (own/, trusted/, rejected/, issuers/).
A server certificate the gateway does not know is refused and lands in rejected/; the daemon's log names it with
its thumbprint. Trusting it here takes effect at the daemon's next connect attempt, without a restart.

  list                 our own certificate (give it to the server's administrator), trusted, issuer and
                       rejected certificates, with thumbprints
  trust <thumbprint>   move a rejected certificate to trusted/ (a unique prefix of 8+ hex digits is enough;
                       colons and spaces are ignored); or add a certificate file (PEM or DER) to trusted/
  reject <thumbprint>  move a trusted certificate to rejected/

Options:
  --state-dir DIR      state directory (default: gateway.stateDir of the config)
  -h, --help           this text`;

/** `lineguard pki list | trust <thumbprint> | reject <thumbprint>`. Pure file operations: no node-opcua load. */
export const pkiCommand: CliCommand = {
  name: 'pki',
  summary: 'List, trust or reject OPC UA server certificates (the gateway\'s PKI store)',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { 'state-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      });
    } catch (err) {
      io.err(`lineguard pki: ${(err as Error).message}`);
      io.err(USAGE);
      return EXIT.USAGE;
    }
    if (parsed.values.help) {
      io.out(USAGE);
      return EXIT.OK;
    }
    const [action, arg, ...extra] = parsed.positionals;
    const stateDir = parsed.values['state-dir'];
    if (!stateDir) {
      io.err('lineguard pki: no state directory: pass --state-dir DIR or a config file with gateway.stateDir');
      return EXIT.USAGE;
    }
    const store = new PkiStore(path.join(path.resolve(stateDir), 'pki'));
    if (action === 'list' && arg === undefined) return list(store, io);
    if ((action === 'trust' || action === 'reject') && arg !== undefined && extra.length === 0) {
      return action === 'trust' ? trust(store, arg, io) : reject(store, arg, io);
    }
    io.err(action === undefined ? 'lineguard pki: say what to do: list, trust <thumbprint> or reject <thumbprint>' : `lineguard pki: cannot understand "${parsed.positionals.join(' ')}"`);
    io.err(USAGE);
    return EXIT.USAGE;
  },
};

function list(store: PkiStore, io: CliIo): number {
  io.out(`PKI store ${store.layout.root}`);
  const own = store.own();
  io.out('');
  io.out('Own certificate (the server must trust this one for Sign / SignAndEncrypt):');
  io.out(own ? line(own) : '  (none yet: it is created at the first connect)');
  if (own) io.out(`  file: ${own.file}`);
  section(io, 'Trusted server certificates', store.trusted());
  section(io, 'Issuer (CA) certificates', store.issuers());
  const rejected = store.rejected();
  section(io, 'Rejected certificates', rejected);
  if (rejected.length > 0) io.out('\nTrust one with: lineguard pki trust <thumbprint>');
  return EXIT.OK;
}

function trust(store: PkiStore, arg: string, io: CliIo): number {
  if (existsSync(arg) && !/^[0-9a-fA-F:\s]+$/.test(arg)) {
    try {
      const added = store.trustFile(arg);
      io.out(`trusted: ${describe(added)}`);
      io.out(`  file: ${added.file}`);
      return EXIT.OK;
    } catch (err) {
      io.err(`lineguard pki trust: ${arg} is not a certificate (PEM or DER): ${(err as Error).message}`);
      return EXIT.DATAERR;
    }
  }
  const result = store.trust(arg);
  switch (result.status) {
    case 'moved':
      io.out(`trusted: ${describe(result.certificate)}`);
      io.out('The gateway uses it at its next connect attempt (no restart needed).');
      return EXIT.OK;
    case 'already':
      io.out(`already trusted: ${describe(result.certificate)}`);
      return EXIT.OK;
    case 'ambiguous':
      return ambiguous(result.matches, io);
    case 'not-found':
      io.err(`lineguard pki trust: no rejected certificate with thumbprint ${arg}. \`lineguard pki list\` shows the rejected ones;`);
      io.err('a certificate appears there after the gateway (or lineguard browse) first tried to connect to the server.');
      return EXIT.NOINPUT;
  }
}

function reject(store: PkiStore, arg: string, io: CliIo): number {
  const result = store.reject(arg);
  switch (result.status) {
    case 'moved':
      io.out(`rejected: ${describe(result.certificate)}`);
      io.out('The gateway refuses it from its next connect attempt on.');
      return EXIT.OK;
    case 'already':
      io.out(`already rejected: ${describe(result.certificate)}`);
      return EXIT.OK;
    case 'ambiguous':
      return ambiguous(result.matches, io);
    case 'not-found':
      io.err(`lineguard pki reject: no trusted certificate with thumbprint ${arg} (see lineguard pki list)`);
      return EXIT.NOINPUT;
  }
}

function ambiguous(matches: StoredCertificate[], io: CliIo): number {
  io.err('lineguard pki: that prefix matches several certificates; give more digits:');
  for (const m of matches) io.err(line(m));
  return EXIT.USAGE;
}

function section(io: CliIo, title: string, certs: StoredCertificate[]): void {
  io.out('');
  io.out(`${title} (${certs.length}):`);
  for (const c of certs) io.out(line(c));
}

function line(c: StoredCertificate): string {
  const expired = c.validTo.getTime() < Date.now() ? '  EXPIRED' : '';
  return `  ${c.thumbprint}  ${c.subject}  valid until ${c.validTo.toISOString().slice(0, 10)}${expired}`;
}

function describe(c: StoredCertificate): string {
  return `${c.subject} (thumbprint ${c.thumbprint})`;
}
