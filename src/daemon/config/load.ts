import { readFileSync } from 'node:fs';
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
import { collectSecrets, substituteReferences, type SubstitutionIssue } from './secrets.js';
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
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: false, allowUnionTypes: true });
    ajv.addKeyword('x-lineguard');
    validator = ajv.compile(ConfigSchema);
  }
  return validator;
}

/** Reads and validates a config file. A file that cannot be read is reported like any other config error. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code ?? err);
    return { ok: false, errors: [`${file}:1:1 (file): cannot read the config file: ${why}`] };
  }
  return loadConfigText(text, file, env);
}

/**
 * Parses, substitutes `${env:…}`/`${file:…}`, validates against the schema (filling defaults) and runs each
 * section's cross-field checks. Every problem is reported at once as `FILE:LINE:COL path: message`.
 */
export function loadConfigText(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, strict: true });
  const at = (line: number, col: number, where: string, message: string): string => `${fileName}:${line}:${col} ${where}: ${message}`;

  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        return at(pos.line, pos.col, '(yaml)', `YAML syntax error: ${firstLine(e.message)}`);
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
  const substitution: SubstitutionIssue[] = [];
  substituteReferences(data, env, substitution, [], path.dirname(path.resolve(fileName)));
  for (const s of substitution) issues.push({ path: s.path, at: 'value', message: s.message });

  dropEmptyValuesWithDefaults(ConfigSchema, data);
  const check = validate();
  if (!check(data)) issues.push(...describeSchemaErrors(check.errors ?? []));

  const config = data as Config;
  const warnings: ConfigIssue[] = [];
  if (issues.length === 0) {
    const report: ConfigIssueReporter = (p, message) => issues.push({ path: p, at: 'value', message });
    runSectionChecks(config, report);
    if (issues.length === 0) {
      checkModelFiles(
        config.models, path.dirname(path.resolve(fileName)),
        (p, message) => issues.push({ path: ['models', ...p], at: 'value', message }),
        (p, message) => warnings.push({ path: ['models', ...p], at: 'value', message }),
      );
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

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
