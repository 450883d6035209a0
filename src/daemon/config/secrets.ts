import { readFileSync } from 'node:fs';
import nodePath from 'node:path';
import type { KeyPath } from './yaml-positions.js';

/**
 * `${env:NAME}` and `${file:/run/credentials/lineguard.service/NAME}` substitution, so secrets never need to sit in
 * the config file (systemd's LoadCredential= puts them under $CREDENTIALS_DIRECTORY). `$${` escapes a literal `${`.
 * A relative `${file:…}` path is resolved from the config file's directory, like model paths.
 */
const REFERENCE = /\$\$\{|\$\{(env|file):([^}]*)\}/g;

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
  return text.replace(REFERENCE, (match, kind: string | undefined, name: string | undefined) => {
    if (match === '$${') return '${';
    const ref = (name ?? '').trim();
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
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      issues.push({ path, message: `cannot read ${file} (${code}) referenced as ${match}` });
      return '';
    }
  });
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
