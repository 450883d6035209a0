import nodePath from 'node:path';
import { MAX_SECRET_BYTES, readBoundedFile } from '../../core/bounded-file.js';
import type { KeyPath } from './yaml-positions.js';

/**
 * `${env:NAME}` and `${file:/run/credentials/lineguard.service/NAME}` substitution, so secrets never need to sit in
 * the config file (systemd's LoadCredential= puts them under $CREDENTIALS_DIRECTORY). `$${` escapes a literal `${`.
 * A relative `${file:…}` path is resolved from the config file's directory, like model paths.
 */
const REFERENCE = /\$\$\{|\$\{([^}]*)(\}?)/g;
const KINDS = ['env', 'file'] as const;

export interface SubstitutionIssue {
  path: KeyPath;
  message: string;
}

/** Replaces references in every string of `value` (in place for objects and arrays); returns the new value. */
export function substituteReferences(
  value: unknown,
  env: NodeJS.ProcessEnv,
  issues: SubstitutionIssue[],
  path: Array<string | number> = [],
  baseDir = process.cwd(),
): unknown {
  if (typeof value === 'string') return substituteString(value, env, issues, path, baseDir);
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      value[i] = substituteReferences(item, env, issues, [...path, i], baseDir);
    });
    return value;
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = substituteReferences(record[key], env, issues, [...path, key], baseDir);
    return record;
  }
  return value;
}

function substituteString(text: string, env: NodeJS.ProcessEnv, issues: SubstitutionIssue[], path: KeyPath, baseDir: string): string {
  return text.replace(REFERENCE, (match, inside: string | undefined, close: string | undefined) => {
    if (match === '$${') return '${';
    // A reference that is not one must never silently become the password it was meant to hide.
    if (close !== '}') {
      issues.push({ path, message: `unclosed reference ${shorten(match)}: end it with "}" (write $\${ for a literal \${)` });
      return '';
    }
    const colon = (inside ?? '').indexOf(':');
    const kind = colon < 0 ? '' : (inside ?? '').slice(0, colon).trim();
    const ref = colon < 0 ? '' : (inside ?? '').slice(colon + 1).trim();
    if (!(KINDS as readonly string[]).includes(kind)) {
      issues.push({
        path,
        message: `unknown reference ${shorten(match)}; write \${env:NAME} or \${file:/path} (write $\${ for a literal \${)`,
      });
      return '';
    }
    if (ref === '') {
      issues.push({ path, message: `empty reference ${match}; write \${env:NAME} or \${file:/path}` });
      return '';
    }
    if (kind === 'env') {
      const found = env[ref];
      if (found === undefined) {
        issues.push({ path, message: `environment variable ${ref} is not set (referenced as ${match})` });
        return '';
      }
      return found;
    }
    const file = nodePath.resolve(baseDir, ref.replace(/^~(?=\/)/, env.HOME ?? '~').replace('$CREDENTIALS_DIRECTORY', env.CREDENTIALS_DIRECTORY ?? ''));
    const read = readBoundedFile(file, MAX_SECRET_BYTES);
    if (!read.ok) {
      issues.push({ path, message: `cannot read ${file} (${read.why}) referenced as ${match}` });
      return '';
    }
    return read.text.replace(/\r?\n$/, '');
  });
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/**
 * Secret fields (`x-lineguard: secret`) whose value holds no `${env:…}`/`${file:…}` reference: the secret is then
 * written in the config file itself. It works, so it is a warning, not an error. Called on the data as read, before
 * substitution.
 */
export function inlineSecrets(schema: unknown, value: unknown, path: Array<string | number> = [], out: KeyPath[] = []): KeyPath[] {
  if (value === undefined || value === null || schema === null || typeof schema !== 'object') return out;
  const s = schema as Record<string, unknown>;
  if (s['x-lineguard'] === 'secret') {
    if (typeof value === 'string' && value.length > 0 && !/\$\{(env|file):/.test(value)) out.push(path);
    return out;
  }
  if (Array.isArray(value) && s.items) value.forEach((item, i) => inlineSecrets(s.items, item, [...path, i], out));
  if (typeof value === 'object' && !Array.isArray(value) && s.properties) {
    const props = s.properties as Record<string, unknown>;
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) inlineSecrets(props[key], child, [...path, key], out);
  }
  return out;
}

/** Collects the values of schema fields marked `x-lineguard: secret` (to redact them from every log line). */
export function collectSecrets(schema: unknown, value: unknown, out: Set<string>): void {
  if (value === undefined || value === null || schema === null || typeof schema !== 'object') return;
  const s = schema as Record<string, unknown>;
  if (s['x-lineguard'] === 'secret' && typeof value === 'string' && value.length > 0) {
    out.add(value);
    return;
  }
  if (Array.isArray(value) && s.items) {
    for (const item of value) collectSecrets(s.items, item, out);
  }
  if (typeof value === 'object' && !Array.isArray(value) && s.properties) {
    const props = s.properties as Record<string, unknown>;
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) collectSecrets(props[key], child, out);
  }
  for (const keyword of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = s[keyword];
    if (Array.isArray(branches)) for (const branch of branches) collectSecrets(branch, value, out);
  }
}
