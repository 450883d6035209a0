import { isScalar, visit, type Document, type LineCounter } from 'yaml';
import { positionOf, type KeyPath } from './yaml-positions.js';

/** A problem with the YAML itself, located like every other config error. */
export interface YamlDataProblem {
  line: number;
  col: number;
  path: KeyPath;
  message: string;
}

/** Aliases the file may expand (the `yaml` library's guard against "billion laughs" files). */
const MAX_ALIAS_COUNT = 100;

/**
 * The plain data of a parsed YAML document, or what keeps it from having any. `toJS` throws on an alias whose anchor
 * is missing or comes later and on too many aliases, and a mapping holding an alias to itself becomes a cycle that
 * no later step survives. Each is a mistake in the file, so it is reported as one (with its line, exit 78), never
 * as a crash: systemd restarts a crashed gateway, and would do so forever on a file that cannot change by itself.
 */
export function documentData(doc: Document, lineCounter: LineCounter): { ok: true; data: unknown } | { ok: false; problem: YamlDataProblem } {
  const key = oddKey(doc, lineCounter);
  if (key) return { ok: false, problem: key };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    const alias = firstAlias(doc, lineCounter, true);
    if (alias) {
      return { ok: false, problem: { ...alias, message: `alias *${alias.name} has no anchor &${alias.name} before it (an anchor must come first)` } };
    }
    const message = (err as Error).message;
    if (/alias count/i.test(message)) {
      const first = firstAlias(doc, lineCounter, false) ?? { line: 1, col: 1, path: [] };
      return {
        ok: false,
        problem: { ...first, message: `the aliases (*name) expand to more than ${MAX_ALIAS_COUNT} copies; write the values out instead` },
      };
    }
    return { ok: false, problem: { line: 1, col: 1, path: [], message: `cannot read the YAML: ${message.split('\n')[0]}` } };
  }
  const odd = oddValue(data, [], new Set());
  if (odd) {
    const pos = positionOf(doc, lineCounter, odd.path);
    return { ok: false, problem: { ...pos, path: odd.path, message: odd.message } };
  }
  return { ok: true, data };
}

/**
 * A key that is a list, a mapping or a typed value (`[a]: 1`, `? { a: 1 }`, `!!binary …: 1`): a config key is a name.
 * `toJS` would stringify it and print a process warning without FILE:LINE:COL.
 */
function oddKey(doc: Document, lineCounter: LineCounter): YamlDataProblem | undefined {
  let found: YamlDataProblem | undefined;
  visit(doc, {
    Pair(_key, pair) {
      const key = pair.key as { range?: [number, number, number] } | null;
      if (key === null || (isScalar(key) && (key.value === null || ['string', 'number', 'boolean'].includes(typeof key.value)))) return undefined;
      const pos = lineCounter.linePos(key.range?.[0] ?? 0);
      found = { line: pos.line, col: pos.col, path: [], message: 'a key must be a plain name, not a list, a mapping or a typed value' };
      return visit.BREAK;
    },
  });
  return found;
}

/** The first alias of the document (only unresolved ones when `unresolved`), with its position. */
function firstAlias(
  doc: Document, lineCounter: LineCounter, unresolved: boolean,
): { line: number; col: number; path: KeyPath; name: string } | undefined {
  let found: { line: number; col: number; path: KeyPath; name: string } | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (unresolved && node.resolve(doc) !== undefined) return undefined;
      const pos = lineCounter.linePos(node.range?.[0] ?? 0);
      found = { line: pos.line, col: pos.col, path: [], name: node.source };
      return visit.BREAK;
    },
  });
  return found;
}

/** A value no JSON config can hold: a cycle made by an alias, or a typed value such as `!!binary`. */
function oddValue(value: unknown, path: Array<string | number>, ancestors: Set<object>): { path: KeyPath; message: string } | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (ancestors.has(value)) return { path, message: 'this alias refers to a mapping or list that contains it, so the value would never end' };
  if (!Array.isArray(value) && Object.getPrototypeOf(value) !== Object.prototype) {
    return { path, message: 'a typed YAML value (such as !!binary) is not a config value here: write a plain string, number, list or mapping' };
  }
  ancestors.add(value);
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [key, child] of entries) {
    const found = oddValue(child, [...path, key], ancestors);
    if (found) return found;
  }
  ancestors.delete(value);
  return undefined;
}
