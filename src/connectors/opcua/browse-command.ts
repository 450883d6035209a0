import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, type CliCommand, type CliIo } from '../../core/cli-command.js';
import { browseVariables, type BrowsedVariable } from './browse.js';
import { renderServerEntry, serverNameFromEndpoint } from './browse-yaml.js';
import type { OpcuaServerConfig, SecurityModeName, SecurityPolicyName } from './config.js';
import { parseNodeId, resolveNodeIdText } from './node-id.js';
import { loadOpcua, routeOpcuaLogs } from './opcua-module.js';
import { bounded, ConnectError, openSession } from './session-opener.js';

const USAGE = `Usage: lineguard browse <endpoint> [options]

Walks an OPC UA server's address space and prints its variables: node id, browse path, data type and current
value. With --yaml it prints a server entry with a ready-to-paste tags: block (node ids in the nsu= form, which
survive a server that renumbers its namespaces).

Options:
  --root NODEID          where to start (default i=85, the Objects folder); nsu=<uri>;s=... works too
  --depth N              levels to walk below the root (default 6)
  --security MODE[:POLICY]  None (default), Sign or SignAndEncrypt, policy Basic256Sha256 (default),
                         Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss, e.g. SignAndEncrypt:Basic256Sha256
  --user NAME            username authentication; the password is read from --password-env
  --password-env VAR     environment variable that holds the password (never on the command line)
  --user-cert FILE       X.509 user certificate authentication (with --user-key FILE)
  --user-key FILE        private key of --user-cert (PEM)
  --trust-server         trust the server certificate if it is unknown (stored in trusted/: the daemon trusts it too)
  --yaml                 print a config entry instead of a table
  --name NAME            server name in the --yaml entry (default: the endpoint's host)
  --max-nodes N          stop after this many nodes (default 20000)
  --all                  also walk namespace 0 (the server's own diagnostics)
  --state-dir DIR        state directory holding pki/ (default: gateway.stateDir of the config)
  -h, --help             this text`;

/** `lineguard browse <endpoint> ...`: loads node-opcua only when run. */
export const browseCommand: CliCommand = {
  name: 'browse',
  summary: 'Walk an OPC UA server\'s address space; --yaml prints a ready-to-paste tags: block',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: {
          root: { type: 'string' }, depth: { type: 'string' }, security: { type: 'string' }, user: { type: 'string' },
          'password-env': { type: 'string' }, 'user-cert': { type: 'string' }, 'user-key': { type: 'string' },
          'trust-server': { type: 'boolean' }, yaml: { type: 'boolean' }, name: { type: 'string' }, 'max-nodes': { type: 'string' },
          all: { type: 'boolean' }, 'state-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (err) {
      return usage(io, (err as Error).message);
    }
    const v = parsed.values;
    if (v.help) {
      io.out(USAGE);
      return EXIT.OK;
    }
    const [endpoint, ...extra] = parsed.positionals;
    if (!endpoint || extra.length > 0) return usage(io, endpoint ? `unexpected arguments: ${extra.join(' ')}` : 'give the endpoint, e.g. opc.tcp://192.168.10.5:4840');
    if (!endpoint.startsWith('opc.tcp://')) return usage(io, `"${endpoint}" is not an opc.tcp:// endpoint URL`);
    if (!v['state-dir']) return usage(io, 'no state directory: pass --state-dir DIR or a config file with gateway.stateDir');
    const security = parseSecurity(v.security ?? 'None');
    if (typeof security === 'string') return usage(io, security);
    const depth = positiveInt(v.depth ?? '6');
    const maxNodes = positiveInt(v['max-nodes'] ?? '20000');
    if (depth === undefined) return usage(io, `--depth must be a positive whole number (got ${v.depth})`);
    if (maxNodes === undefined) return usage(io, `--max-nodes must be a positive whole number (got ${v['max-nodes']})`);
    const root = parseNodeId(v.root ?? 'i=85');
    if (!root.ok) return usage(io, `--root: ${root.error}`);

    let auth: OpcuaServerConfig['auth'] = { type: 'anonymous' };
    if (v.user !== undefined) {
      const envName = v['password-env'];
      if (!envName) return usage(io, '--user needs --password-env VAR (passwords are never taken from the command line)');
      const password = process.env[envName];
      if (password === undefined) return usage(io, `--password-env ${envName}: that environment variable is not set`);
      auth = { type: 'username', username: v.user, password };
    } else if (v['user-cert'] !== undefined || v['user-key'] !== undefined) {
      if (!v['user-cert'] || !v['user-key']) return usage(io, '--user-cert and --user-key go together');
      auth = { type: 'certificate', certificateFile: path.resolve(v['user-cert']), privateKeyFile: path.resolve(v['user-key']) };
    }

    const opcua = await loadOpcua();
    routeOpcuaLogs(opcua, io.log);
    const requestTimeoutMs = 15_000;
    let opened;
    try {
      opened = await openSession(opcua, {
        endpoint, mode: security.mode, policy: security.policy, auth,
        trustUnknown: v['trust-server'] === true ? 'always' : 'never',
        pkiDir: path.join(path.resolve(v['state-dir']), 'pki'),
        sessionTimeoutMs: 60_000, requestTimeoutMs, clientName: 'lineguard/browse',
      }, (verdict) => {
        if (verdict.trustedNow) io.err(`trusted server certificate ${verdict.certificate.subject} (thumbprint ${verdict.certificate.thumbprint}) as asked by --trust-server`);
      });
    } catch (err) {
      const message = err instanceof ConnectError ? err.message : (err as Error).message;
      io.err(`lineguard browse: ${message}`);
      if (err instanceof ConnectError && err.kind === 'certificate') io.err('(or rerun with --trust-server to trust it for the gateway)');
      return EXIT.UNAVAILABLE;
    }
    try {
      const namespaceArray = await bounded(opened.session.readNamespaceArray(), requestTimeoutMs, 'read NamespaceArray');
      const rootId = resolveNodeIdText(root.nodeId, namespaceArray);
      if (!rootId.ok) {
        io.err(`lineguard browse: --root: ${rootId.error}`);
        return EXIT.DATAERR;
      }
      const outcome = await browseVariables(opcua, opened.session, {
        root: rootId.nodeId, maxDepth: depth, maxNodes, includeNamespace0: v.all === true, maxItemsPerCall: 1000,
      });
      if (outcome.truncated) io.err(`lineguard browse: stopped after ${maxNodes} nodes; narrow it with --root or raise --max-nodes`);
      if (v.yaml) {
        const applicationName = opened.session.endpoint?.server?.applicationName?.text ?? undefined;
        const name = v.name ?? serverNameFromEndpoint(endpoint, applicationName);
        const readable = outcome.variables.filter((x) => x.supported).length;
        io.out(renderServerEntry(
          { name, endpoint, mode: security.mode, policy: security.policy, auth, ...(v['password-env'] ? { passwordEnv: v['password-env'] } : {}) },
          outcome.variables,
          [
            `lineguard browse ${endpoint} --root ${v.root ?? 'i=85'} --depth ${depth}: ${outcome.variables.length} variables, ${readable} readable as tags`,
            'Paste this item under `opcua:` in the config; delete the tags you do not need.',
          ],
        ).trimEnd());
      } else {
        printTable(outcome.variables, io);
      }
      return EXIT.OK;
    } catch (err) {
      io.err(`lineguard browse: ${(err as Error).message}`);
      return EXIT.FAILURE;
    } finally {
      await opened.close();
    }
  },
};

function printTable(variables: readonly BrowsedVariable[], io: CliIo): void {
  if (variables.length === 0) {
    io.out('no variables found under this root (try --depth, --root or --all)');
    return;
  }
  const rows = variables.map((x) => [
    x.stableNodeId, x.path.join('/'), x.dataType + (x.arrayLength !== undefined ? `[${x.arrayLength}]` : ''),
    x.value !== undefined ? String(x.value).slice(0, 40) : x.note ?? x.statusName,
  ]);
  const head = ['NODE ID', 'PATH', 'TYPE', 'VALUE'];
  const widths = head.map((h, c) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[c]!.length))));
  const fmt = (r: string[]): string => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ');
  io.out(fmt(head));
  for (const r of rows) io.out(fmt(r));
}

function parseSecurity(text: string): { mode: SecurityModeName; policy: SecurityPolicyName } | string {
  const [modeText, policyText] = text.split(':');
  const modes: SecurityModeName[] = ['None', 'Sign', 'SignAndEncrypt'];
  const policies: SecurityPolicyName[] = ['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'];
  const mode = modes.find((m) => m.toLowerCase() === (modeText ?? '').toLowerCase());
  if (!mode) return `--security: mode "${modeText}" is not one of ${modes.join(', ')}`;
  const policy = policyText === undefined ? (mode === 'None' ? 'None' : 'Basic256Sha256') : policies.find((p) => p.toLowerCase() === policyText.toLowerCase());
  if (!policy) return `--security: policy "${policyText}" is not one of ${policies.join(', ')}`;
  if ((mode === 'None') !== (policy === 'None')) return '--security: policy None goes with mode None only';
  return { mode, policy };
}

function positiveInt(text: string): number | undefined {
  return /^\d+$/.test(text) && Number(text) > 0 ? Number(text) : undefined;
}

function usage(io: CliIo, message: string): number {
  io.err(`lineguard browse: ${message}`);
  io.err('(lineguard browse --help for the options)');
  return EXIT.USAGE;
}
