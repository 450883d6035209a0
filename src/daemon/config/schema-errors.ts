import type { ErrorObject } from 'ajv';
import { closest } from './suggest.js';
import type { KeyPath } from './yaml-positions.js';

/** One config problem, before it is given a file position. */
export interface ConfigIssue {
  path: KeyPath;
  /** Point at the key (unknown keys) rather than the value. */
  at: 'key' | 'value';
  message: string;
}

/**
 * Turns Ajv's errors into messages a plant engineer can act on: unknown keys with a suggestion, wrong types with
 * what was expected and what was found, enumerations listing the allowed values, durations and sizes with examples.
 * Ajv reports every branch of an `anyOf`; those are folded into one message per value.
 */
export function describeSchemaErrors(errors: readonly ErrorObject[]): ConfigIssue[] {
  const folded = new Set<ErrorObject>();
  const issues: ConfigIssue[] = [];
  const anyOfErrors = errors.filter((e) => e.keyword === 'anyOf');
  for (const anyOf of anyOfErrors) {
    for (const e of errors) if (e !== anyOf && e.schemaPath.startsWith(`${anyOf.schemaPath}/`)) folded.add(e);
  }
  for (const error of errors) {
    if (folded.has(error)) continue;
    const issue = describe(error);
    if (issue) issues.push(issue);
  }
  return issues;
}

function describe(error: ErrorObject): ConfigIssue | undefined {
  const path = pointerToPath(error.instancePath);
  const schema = (error.parentSchema ?? {}) as Record<string, unknown>;
  const found = schema['x-lineguard'] === 'secret' ? '(a secret, not shown)' : describeValue(error.data);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String((error.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((schema.properties ?? {}) as Record<string, unknown>);
      const suggestion = closest(key, allowed);
      const hint = suggestion ? `did you mean "${suggestion}"?` : `allowed keys here: ${allowed.join(', ')}`;
      return { path: [...path, key], at: 'key', message: `unknown key "${key}"; ${hint}` };
    }
    case 'required': {
      const key = String((error.params as { missingProperty: string }).missingProperty);
      const property = ((schema.properties ?? {}) as Record<string, { description?: string }>)[key];
      const what = property?.description ? ` (${property.description})` : '';
      return { path: [...path, key], at: 'value', message: `missing required key "${key}"${what}` };
    }
    case 'type': {
      const expected = String((error.params as { type: string }).type);
      if (typeof error.data === 'number' && !Number.isFinite(error.data)) {
        return { path, at: 'value', message: `expected a finite number, found ${found}` };
      }
      return { path, at: 'value', message: `expected ${article(expected)}, found ${found}` };
    }
    case 'anyOf': {
      const branches = (schema.anyOf ?? []) as Array<Record<string, unknown>>;
      const constants = branches.filter((b) => 'const' in b).map((b) => b.const);
      if (constants.length === branches.length && constants.length > 0) {
        const allowed = constants.map((c) => JSON.stringify(c)).join(', ');
        const suggestion = typeof error.data === 'string' ? closest(error.data, constants.map(String)) : undefined;
        const hint = suggestion ? `; did you mean "${suggestion}"?` : '';
        return { path, at: 'value', message: `must be one of ${allowed}, found ${found}${hint}` };
      }
      return { path, at: 'value', message: `found ${found}, which matches none of the allowed forms` };
    }
    case 'enum': {
      const allowed = ((error.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v));
      return { path, at: 'value', message: `must be one of ${allowed.join(', ')}, found ${found}` };
    }
    case 'const':
      return { path, at: 'value', message: `must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}, found ${found}` };
    case 'pattern': {
      const kind = schema['x-lineguard'];
      if (kind === 'duration') return { path, at: 'value', message: `expected a duration such as 250ms, 30s, 5m, 12h or 7d, found ${found}` };
      if (kind === 'name') return { path, at: 'value', message: `expected a name of letters, digits, "_", "." or "-" (no spaces), starting with a letter or digit, found ${found}` };
      if (kind === 'size') return { path, at: 'value', message: `expected a size such as 512MB or 2GB, found ${found}` };
      const description = typeof schema.description === 'string' ? ` (${schema.description})` : '';
      return { path, at: 'value', message: `${found} does not have the expected form /${String((error.params as { pattern: string }).pattern)}/${description}` };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minLength':
    case 'maxLength':
    case 'minItems':
    case 'maxItems':
      return { path, at: 'value', message: `${error.message ?? 'out of range'}, found ${found}` };
    default:
      return { path, at: 'value', message: `${error.message ?? 'invalid'}, found ${found}` };
  }
}

/** `/opcua/0/tags` → ['opcua', 0, 'tags'] (JSON pointer, RFC 6901). */
export function pointerToPath(pointer: string): Array<string | number> {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describeValue(value: unknown): string {
  if (value === null) return 'null (an empty value)';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number' && Number.isNaN(value)) return '.nan (not a number)';
  if (typeof value === 'number' && !Number.isFinite(value)) return `${value > 0 ? '' : '-'}.inf (infinity)`;
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function article(type: string): string {
  const names: Record<string, string> = {
    integer: 'an integer (a whole number)', number: 'a number', string: 'a string', boolean: 'true or false',
    object: 'a mapping (key: value lines)', array: 'a list (- items)', null: 'null',
  };
  return names[type] ?? type;
}
