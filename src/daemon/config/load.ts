import { statSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import type { ConfigIssueReporter } from '../../core/config-types.js';
import * as bufferSection from '../../buffer/config.js';
import * as opcuaSection from '../../connectors/opcua/config.js';
import * as mqttSection from '../../connectors/mqtt/config.js';
import * as runtimeSection from '../../runtime/config.js';
import { checkModelFiles } from '../../runtime/model-config-check.js';
import { ConfigSchema, type Config } from './schema.js';
import { describeSchemaErrors, type ConfigIssue } from './schema-errors.js';
import { MAX_CONFIG_BYTES, readBoundedFile } from '../../core/bounded-file.js';
import { collectSecrets, inlineSecrets, substituteReferences, type SubstitutionIssue } from './secrets.js';
import { documentData } from './yaml-data.js';
import { formatPath, positionOf } from './yaml-positions.js';

export type LoadResult =
  | {
      ok: true;
      config: Config;
      /** Resolved secret values; the logger redacts them from every line. */
      secrets: string[];
      /** The file's directory: relative paths in the config are resolved from it. */
      baseDir: string;
      /** Things that work but are probably not what was meant, as `FILE:LINE:COL path: warning: message`. */
      warnings: string[];
    }
  | { ok: false; errors: string[] };

let validator: ValidateFunction | undefined;

function validate(): ValidateFunction {
  if (!validator) {
    // strictNumbers: YAML's .nan and .inf are numbers to Ajv otherwise, and `raiseAbove: .nan` never raised an alert.
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: false, allowUnionTypes: true, strictNumbers: true });
    ajv.addKeyword('x-lineguard');
    validator = ajv.compile(ConfigSchema);
  }
  return validator;
}

/** Reads and validates a config file. A file that cannot be read is reported like any other config error. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const read = readBoundedFile(file, MAX_CONFIG_BYTES);
  if (!read.ok) return { ok: false, errors: [`${file}:1:1 (file): cannot read the config file: ${read.why}`] };
  return loadConfigText(read.text, file, env);
}

/**
 * Parses, substitutes `${env:…}`/`${file:…}`, validates against the schema (filling defaults) and runs each
 * section's cross-field checks. Every problem is reported at once as `FILE:LINE:COL path: message`.
 */
export function loadConfigText(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, strict: true });
  // One problem, one line: a key or value holding a line break must not start a line without FILE:LINE:COL.
  const at = (line: number, col: number, where: string, message: string): string =>
    `${fileName}:${line}:${col} ${oneLine(where)}: ${oneLine(message)}`;

  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        return at(pos.line, pos.col, '(yaml)', `YAML syntax error: ${yamlMessage(e.message)}`);
      }),
    };
  }

  const read = documentData(doc, lineCounter);
  if (!read.ok) {
    const { line, col, path: where, message } = read.problem;
    return { ok: false, errors: [at(line, col, where.length > 0 ? formatPath(where) : '(yaml)', message)] };
  }
  const data = read.data;
  if (data === null || data === undefined) return { ok: false, errors: [at(1, 1, '(top level)', 'the file is empty; start from `lineguard example-config`')] };
  if (typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, errors: [at(1, 1, '(top level)', 'expected a mapping of sections (gateway:, opcua:, mqtt:, ...)')] };
  }

  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  for (const p of inlineSecrets(ConfigSchema, data)) {
    warnings.push({
      path: p, at: 'value',
      message: 'a secret written in the config file (readable by whoever reads the file, and kept in backups); put it in ' +
        '${file:/run/credentials/lineguard.service/NAME} (systemd LoadCredential=) or ${env:NAME}',
    });
  }
  const substitution: SubstitutionIssue[] = [];
  substituteReferences(data, env, substitution, [], path.dirname(path.resolve(fileName)));
  for (const s of substitution) issues.push({ path: s.path, at: 'value', message: s.message });

  dropEmptyValuesWithDefaults(ConfigSchema, data);
  const check = validate();
  if (!check(data)) issues.push(...describeSchemaErrors(check.errors ?? []));

  const config = data as Config;
  if (issues.length === 0) {
    const report: ConfigIssueReporter = (p, message) => issues.push({ path: p, at: 'value', message });
    runSectionChecks(config, report);
    checkHttpHost(config, (p, message) => warnings.push({ path: p, at: 'value', message }));
    checkFilesAreRegular(config, path.dirname(path.resolve(fileName)), report);
    if (issues.length === 0) {
      checkModelFiles(
        config.models, path.dirname(path.resolve(fileName)),
        (p, message) => issues.push({ path: ['models', ...p], at: 'value', message }),
        (p, message) => warnings.push({ path: ['models', ...p], at: 'value', message }),
      );
      warnReportByExceptionWindows(config, (p, message) => warnings.push({ path: p, at: 'value', message }));
    }
  }

  if (issues.length > 0) {
    const located = issues.map((issue) => ({ issue, pos: positionOf(doc, lineCounter, issue.path, issue.at) }));
    located.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
    const lines = located.map(({ issue, pos }) => at(pos.line, pos.col, formatPath(issue.path), issue.message));
    return { ok: false, errors: [...new Set(lines)] };
  }

  const baseDir = path.dirname(path.resolve(fileName));
  config.gateway.stateDir = path.resolve(baseDir, config.gateway.stateDir);
  const secrets = new Set<string>();
  collectSecrets(ConfigSchema, config, secrets);
  const warningLines = warnings.map((w) => {
    const pos = positionOf(doc, lineCounter, w.path, w.at);
    return at(pos.line, pos.col, formatPath(w.path), `warning: ${w.message}`);
  });
  return { ok: true, config, secrets: [...secrets], baseDir, warnings: warningLines };
}

type SectionCheck<T> = (cfg: T, report: ConfigIssueReporter) => void;

/** Calls the cross-field check each section exports, with paths prefixed by the section's key. */
function runSectionChecks(config: Config, report: ConfigIssueReporter): void {
  const prefixed = (prefix: string): ConfigIssueReporter => (p, message) => report([prefix, ...p], message);
  const checks: Array<[string, unknown, unknown]> = [
    ['opcua', (opcuaSection as Record<string, unknown>).checkOpcuaConfig, config.opcua],
    ['mqtt', (mqttSection as Record<string, unknown>).checkMqttConfig, config.mqtt],
    ['buffer', (bufferSection as Record<string, unknown>).checkBufferConfig, config.buffer],
    ['models', (runtimeSection as Record<string, unknown>).checkModelsConfig, config.models],
  ];
  for (const [prefix, fn, section] of checks) {
    if (typeof fn === 'function') (fn as SectionCheck<unknown>)(section, prefixed(prefix));
  }
  checkTagNamesUnique(config, report);
  if (config.http.enabled && config.http.host.trim() === '') {
    // Node listens on every interface for an empty host: the opposite of what an empty value looks like it means.
    report(['http', 'host'], 'an empty host listens on every interface; write 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)');
  }
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|::1|\[::1\]|localhost|::ffff:127(\.\d{1,3}){3})$/i;

/** /metrics and /healthz say what the plant runs and when it is down: reachable from the network only on purpose. */
function checkHttpHost(config: Config, warn: ConfigIssueReporter): void {
  if (!config.http.enabled) return;
  const host = config.http.host.trim();
  if (host === '' || LOOPBACK.test(host)) return;
  warn(['http', 'host'], `${host} is not a loopback address: /metrics and /healthz are reachable from the network (keep 127.0.0.1 unless a firewall protects the port)`);
}

/** Largest certificate or key file (PEM or DER): a chain is a few KB, a system CA bundle a few hundred. */
const MAX_KEY_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Files the gateway reads at start or connect (model files, TLS and OPC UA user certificates and keys): a FIFO or a
 * device there would block or never end (like a config file of /dev/zero), so anything but a regular file is refused
 * here, before anything opens it. A missing file is left to the part that reads it (a model file not there yet is a
 * warning; a missing certificate is a connect error that names it).
 */
function checkFilesAreRegular(config: Config, baseDir: string, report: ConfigIssueReporter): void {
  const stateDir = path.resolve(baseDir, config.gateway.stateDir);
  const check = (where: ReadonlyArray<string | number>, file: string | undefined, from: string, maxBytes?: number): void => {
    if (file === undefined || file === '') return;
    let stat;
    try {
      stat = statSync(path.resolve(from, file));
    } catch {
      return;
    }
    if (!stat.isFile()) report(where, `${file} is not a regular file (${stat.isDirectory() ? 'a directory' : 'a device, FIFO or socket'})`);
    else if (maxBytes !== undefined && stat.size > maxBytes) report(where, `${file} is ${stat.size} bytes: not a certificate or key (at most 4 MiB)`);
  };
  config.models.forEach((model, m) => check(['models', m, 'file'], model.file, baseDir));
  config.mqtt.brokers.forEach((broker, b) => {
    for (const key of ['caFile', 'certFile', 'keyFile'] as const) check(['mqtt', 'brokers', b, 'tls', key], broker.tls?.[key], stateDir, MAX_KEY_FILE_BYTES);
  });
  config.opcua.forEach((server, s) => {
    for (const key of ['certificateFile', 'privateKeyFile'] as const) check(['opcua', s, 'auth', key], server.auth[key], '/', MAX_KEY_FILE_BYTES);
  });
}

/**
 * OPC UA tags report by exception: a window without periodMs gets a frame only when some input changes, so a stretch
 * in which nothing changed is missing from it. A model that reads OPC UA tags over several rows wants a grid.
 */
function warnReportByExceptionWindows(config: Config, warn: ConfigIssueReporter): void {
  const opcuaTags = new Set(config.opcua.flatMap((server) => server.tags.map((t) => t.tag)));
  config.models.forEach((model, i) => {
    if (model.window.samples <= 1 || model.window.periodMs !== undefined) return;
    const fromOpcua = model.inputs.filter((tag) => opcuaTags.has(tag));
    if (fromOpcua.length === 0) return;
    warn(['models', i, 'window'], `inputs ${fromOpcua.slice(0, 3).join(', ')}${fromOpcua.length > 3 ? ', ...' : ''} come from OPC UA, which reports on change: ` +
      'without window.periodMs the window has one frame per change, not one per sample period the model was trained on (set periodMs)');
  });
}

/** A tag name produced by two OPC UA tags would silently merge two signals into one series. */
function checkTagNamesUnique(config: Config, report: ConfigIssueReporter): void {
  const seen = new Map<string, string>();
  config.opcua.forEach((server, s) => {
    server.tags.forEach((tag, t) => {
      const where = `opcua[${s}].tags[${t}]`;
      const previous = seen.get(tag.tag);
      if (previous) report(['opcua', s, 'tags', t, 'tag'], `tag name "${tag.tag}" is already used by ${previous}`);
      else seen.set(tag.tag, where);
    });
  });
}

/**
 * `log:` with every line below it commented out parses as null; for a field that has a default that means "use
 * the default", which is what the engineer meant.
 */
function dropEmptyValuesWithDefaults(schema: unknown, value: unknown): void {
  if (schema === null || typeof schema !== 'object') return;
  const s = schema as { properties?: Record<string, { default?: unknown }>; items?: unknown };
  if (Array.isArray(value)) {
    for (const item of value) dropEmptyValuesWithDefaults(s.items, item);
    return;
  }
  if (value === null || typeof value !== 'object' || !s.properties) return;
  const record = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(s.properties)) {
    if (record[key] === null && child.default !== undefined) delete record[key];
    else dropEmptyValuesWithDefaults(child, record[key]);
  }
}

/** Control characters (a line break in a quoted key or value) written as escapes. */
function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * The first line of a `yaml` error without its own " at line L, column C:" tail: the position already leads the
 * line, and the tail's colon introduced a code excerpt that is not printed.
 */
function yamlMessage(text: string): string {
  const first = text.split('\n')[0] ?? text;
  return first.replace(/\s+at line \d+, column \d+:?\s*$/, '').replace(/:\s*$/, '');
}
