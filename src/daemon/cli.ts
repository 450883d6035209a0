import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { pino } from 'pino';
import { EXIT, type CliCommand, type CliIo } from '../core/cli-command.js';
import { loadConfigFile } from './config/load.js';
import { exampleConfig } from './config/example-config.js';
import { jsonSchemaText } from './config/json-schema.js';
import { summarizeConfig } from './config/summary.js';
import { outputsCommand } from './outputs-command.js';
import { backtestCommand } from './backtest-command.js';

export const DEFAULT_CONFIG = '/etc/lineguard/lineguard.yaml';

/** `--config FILE`, else $LINEGUARD_CONFIG, else /etc/lineguard/lineguard.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.LINEGUARD_CONFIG ?? DEFAULT_CONFIG;
}

const checkConfigCommand: CliCommand = {
  name: 'check-config',
  summary: 'Validate a config file; print every error as FILE:LINE:COL path: message (exit 78 when invalid).',
  usage: `Usage: lineguard check-config [FILE]

Validates FILE (default: $LINEGUARD_CONFIG, else ${DEFAULT_CONFIG}) without starting anything.
Valid: prints a one-line summary and exits 0. Invalid: prints every error, one per line, as
  FILE:LINE:COL path.to.key: message
and exits 78 (EX_CONFIG). \${env:NAME} and \${file:PATH} references are resolved, so run it as the service's user
with the service's environment to check secrets too.`,
  async run(argv, io) {
    const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
    const file = positionals[0] ?? configPath(values.config);
    const loaded = loadConfigFile(file);
    if (!loaded.ok) {
      for (const line of loaded.errors) io.err(line);
      io.err(`${file}: ${loaded.errors.length} error${loaded.errors.length === 1 ? '' : 's'}; the gateway would refuse to start`);
      return EXIT.CONFIG;
    }
    for (const line of loaded.warnings) io.err(line);
    io.out(`${file}: OK — ${summarizeConfig(loaded.config)}${loaded.warnings.length > 0 ? ` (${loaded.warnings.length} warning${loaded.warnings.length === 1 ? '' : 's'})` : ''}`);
    return EXIT.OK;
  },
};

const exampleConfigCommand: CliCommand = {
  name: 'example-config',
  summary: 'Print a complete, commented example config (generated from the schema).',
  usage: 'Usage: lineguard example-config > lineguard.yaml\n\nEvery key with its description, default and allowed values; passes check-config as printed.',
  async run(_argv, io) {
    io.out(exampleConfig().trimEnd());
    return EXIT.OK;
  },
};

const schemaCommand: CliCommand = {
  name: 'schema',
  summary: 'Print the JSON Schema of the config file (for editor autocompletion).',
  usage: `Usage: lineguard schema > lineguard.schema.json

The same file is committed as schema/lineguard.schema.json. With the YAML language server, put
  # yaml-language-server: $schema=/path/to/lineguard.schema.json
at the top of the config file.`,
  async run(_argv, io) {
    io.out(jsonSchemaText().trimEnd());
    return EXIT.OK;
  },
};

const runCommand: CliCommand = {
  name: 'run',
  summary: 'Run the gateway daemon (as systemd does).',
  usage: `Usage: lineguard run [--config FILE]

Runs the gateway on FILE (default: $LINEGUARD_CONFIG, else ${DEFAULT_CONFIG}).
Logs are JSON lines on stdout (pretty on a terminal). Signals: SIGTERM/SIGINT stop cleanly (exit 0),
SIGHUP reloads the config (an invalid file is refused and the gateway keeps running). A bad config at start
exits 78 with the same lines as check-config.`,
  async run(argv, io) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
    const { runDaemon } = await import('./run-daemon.js');
    return runDaemon(configPath(values.config), io);
  },
};

const demoCommand: CliCommand = {
  name: 'demo',
  summary: 'Start an embedded demo line (OPC UA server, MQTT broker) and the gateway on it; see alerts in 30 s.',
  usage: `Usage: lineguard demo [--speed N] [--mqtt-url URL] [--print-config]

Starts a simulated production line (a node-opcua server replaying the AI4I 2020 milling data and a C-MAPSS
engine), an embedded MQTT broker (unless --mqtt-url points at a real one) and the gateway with the shipped
models, its state in a temp directory. Prints alerts as they are raised and cleared. Ctrl-C stops everything.`,
  async run(argv, io) {
    const { runDemo } = await import('../demo/demo.js');
    return runDemo(argv, io);
  },
};

/** Commands that work on the gateway's state directory (the OPC UA PKI lives there). */
const STATE_DIR_COMMANDS = new Set(['pki', 'browse']);
const DEFAULT_STATE_DIR = '/var/lib/lineguard';

/**
 * `lineguard pki list` must act on the PKI the daemon uses: unless `--state-dir` is given, it is read from the
 * config (`--config FILE`, else $LINEGUARD_CONFIG, else the default path). Only `gateway.stateDir` is read, so a
 * config whose secrets are not available to this shell still works.
 */
export function withStateDir(argv: string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): string[] {
  if (argv.some((a) => a === '--state-dir' || a.startsWith('--state-dir='))) return argv;
  const rest: string[] = [];
  let configFlag: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config' || arg === '-c') configFlag = argv[++i];
    else if (arg.startsWith('--config=')) configFlag = arg.slice('--config='.length);
    else rest.push(arg);
  }
  const file = configPath(configFlag, env);
  let stateDir = DEFAULT_STATE_DIR;
  try {
    const doc = parseYaml(readFileSync(file, 'utf8')) as { gateway?: { stateDir?: unknown } } | null;
    const configured = doc?.gateway?.stateDir;
    if (typeof configured === 'string' && configured.length > 0) stateDir = path.resolve(path.dirname(path.resolve(file)), configured);
  } catch (err) {
    io.err(`(no readable config at ${file}: ${(err as NodeJS.ErrnoException).code ?? 'invalid YAML'}; using state directory ${DEFAULT_STATE_DIR})`);
  }
  return [...rest, '--state-dir', stateDir];
}

async function contributedCommands(): Promise<CliCommand[]> {
  const [opcua, runtime] = await Promise.all([import('../connectors/opcua/index.js'), import('../runtime/index.js')]);
  return [opcua.pkiCommand, opcua.browseCommand, runtime.modelCommand];
}

const OWN_COMMANDS = [runCommand, checkConfigCommand, exampleConfigCommand, schemaCommand, demoCommand, outputsCommand, backtestCommand];

function help(commands: CliCommand[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: lineguard <command> [options]',
    '',
    'Lineguard — edge gateway: OPC UA and MQTT in, SQLite buffer, ONNX models, alerts over MQTT.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `lineguard <command> --help` for the options of each command.',
    'Exit codes: 0 ok, 64 usage, 69 unavailable, 70 internal error, 78 bad config.',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const needsContributed = name === undefined || name === '--help' || name === '-h' || !OWN_COMMANDS.some((c) => c.name === name);
  const commands = needsContributed ? [...OWN_COMMANDS, ...(await contributedCommands())] : OWN_COMMANDS;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help(commands));
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === 'version') {
    io.out(`lineguard ${process.env.npm_package_version ?? '0.1.0'} (node ${process.version})`);
    return EXIT.OK;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`lineguard: unknown command "${name}"`);
    io.err(help(commands));
    return EXIT.USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(command.usage);
    return EXIT.OK;
  }
  try {
    return await command.run(STATE_DIR_COMMANDS.has(command.name) ? withStateDir(rest, io) : rest, io);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`lineguard ${name}: ${e.message}`);
      io.err(command.usage);
      return EXIT.USAGE;
    }
    io.err(`lineguard ${name}: ${e.message}`);
    return EXIT.SOFTWARE;
  }
}

/** Entry point of bin/lineguard. */
export async function cli(): Promise<void> {
  // `lineguard schema | head` closes the pipe early: that is the reader's choice, not an error worth a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  const io: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    log: pino({ level: 'warn' }, pino.destination(2)),
  };
  const code = await main(process.argv.slice(2), io);
  process.exitCode = code;
}
