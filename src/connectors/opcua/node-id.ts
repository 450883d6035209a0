/**
 * Node ids as a controls engineer writes them (OPC UA Part 6, 5.3.1.10): `ns=2;s=Name`, `ns=2;i=1001`,
 * `ns=2;g=<guid>`, `ns=2;b=<base64>`, `i=85` (namespace 0), and `nsu=<namespace uri>;s=Name`.
 *
 * Parsing is pure (no node-opcua) so check-config stays fast. A namespace *index* is only meaningful for one run of
 * one server: servers may renumber their namespaces on restart, so `nsu=` ids are resolved against the server's
 * NamespaceArray at every connect.
 */

export type IdentifierType = 'i' | 's' | 'g' | 'b';

export interface ParsedNodeId {
  /** Namespace index (`ns=`, or 0 when absent) or URI (`nsu=`). */
  namespace: { index: number } | { uri: string };
  type: IdentifierType;
  identifier: string;
}

export type ParseResult = { ok: true; nodeId: ParsedNodeId } | { ok: false; error: string };

const FORMS = 'use ns=<index>;s=<name>, ns=<index>;i=<number>, ns=<index>;g=<guid>, ns=<index>;b=<base64> or nsu=<namespace uri>;s=<name>';
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Parses a node id string; the error says what is wrong and which forms are accepted. */
export function parseNodeId(text: string): ParseResult {
  const trimmed = text.trim();
  let namespace: ParsedNodeId['namespace'] = { index: 0 };
  let rest = trimmed;
  const nsu = /^nsu=(.+?);([isgb]=.*)$/s.exec(trimmed);
  const ns = /^ns=([^;]*);(.*)$/s.exec(trimmed);
  if (nsu) {
    namespace = { uri: nsu[1]! };
    rest = nsu[2]!;
  } else if (ns) {
    if (!/^\d+$/.test(ns[1]!) || Number(ns[1]) > 65535) return { ok: false, error: `"${text}": namespace index "${ns[1]}" is not a number from 0 to 65535` };
    namespace = { index: Number(ns[1]) };
    rest = ns[2]!;
  } else if (/^nsu?=/.test(trimmed)) {
    return { ok: false, error: `"${text}" is not a node id: ${FORMS}` };
  }
  const id = /^([isgb])=(.*)$/s.exec(rest);
  if (!id) return { ok: false, error: `"${text}" is not a node id: ${FORMS}` };
  const type = id[1] as IdentifierType;
  const identifier = id[2]!;
  if (identifier.length === 0) return { ok: false, error: `"${text}": the identifier after ${type}= is empty` };
  if (type === 'i' && (!/^\d+$/.test(identifier) || Number(identifier) > 0xffffffff)) {
    return { ok: false, error: `"${text}": a numeric identifier (i=) is a whole number from 0 to 4294967295` };
  }
  if (type === 'g' && !GUID.test(identifier)) return { ok: false, error: `"${text}": a GUID identifier (g=) looks like 72962b91-fa75-4ae6-8d28-b404dc7daf63` };
  if (type === 'b' && !BASE64.test(identifier)) return { ok: false, error: `"${text}": an opaque identifier (b=) is base64` };
  return { ok: true, nodeId: { namespace, type, identifier } };
}

export type ResolveResult = { ok: true; nodeId: string; namespaceIndex: number } | { ok: false; error: string };

/**
 * Turns a parsed node id into the `ns=<index>;…` form for this session, using the server's NamespaceArray.
 * The error names the URI and what the server offers instead.
 */
export function resolveNodeIdText(parsed: ParsedNodeId, namespaceArray: readonly string[]): ResolveResult {
  let index: number;
  if ('uri' in parsed.namespace) {
    index = namespaceArray.indexOf(parsed.namespace.uri);
    if (index < 0) {
      const offered = namespaceArray.slice(1).join(', ') || '(none)';
      return { ok: false, error: `namespace URI "${parsed.namespace.uri}" is not on the server (its namespaces: ${offered})` };
    }
  } else {
    index = parsed.namespace.index;
    if (index >= namespaceArray.length) {
      return { ok: false, error: `namespace index ${index} does not exist on the server (it has 0..${namespaceArray.length - 1})` };
    }
  }
  return { ok: true, nodeId: formatIndexed(index, parsed.type, parsed.identifier), namespaceIndex: index };
}

/** `ns=2;s=Name`, or `i=85` for namespace 0. */
export function formatIndexed(index: number, type: IdentifierType, identifier: string): string {
  return index === 0 ? `${type}=${identifier}` : `ns=${index};${type}=${identifier}`;
}

/** The stable form for config files: `nsu=<uri>;s=Name` outside namespace 0, `i=85` inside it. */
export function formatStable(index: number, type: IdentifierType, identifier: string, namespaceArray: readonly string[]): string {
  const uri = namespaceArray[index];
  if (index === 0 || uri === undefined) return formatIndexed(index, type, identifier);
  return `nsu=${uri};${type}=${identifier}`;
}
