import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type KeyPath = ReadonlyArray<string | number>;

/** `['opcua', 0, 'tags', 3, 'nodeId']` → `opcua[0].tags[3].nodeId` (what error lines print). */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(top level)' : out;
}

/**
 * Finds the line and column (1-based) of the value at `path` in a parsed YAML document — or of its key when
 * `at` is 'key' (unknown keys point at the key itself). When the path does not exist (a missing required key),
 * the nearest existing ancestor is used, which is where the engineer must add it.
 */
export function positionOf(
  doc: Document,
  lineCounter: LineCounter,
  path: KeyPath,
  at: 'key' | 'value' = 'value',
): { line: number; col: number } {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(segment));
      if (!pair) break;
      const keyOffset = rangeStart(pair.key);
      if (last && at === 'key' && keyOffset !== undefined) {
        offset = keyOffset;
        break;
      }
      node = pair.value;
      offset = rangeStart(node) ?? keyOffset ?? offset;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(node) ?? offset;
    } else {
      break;
    }
  }
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, col: pos.col };
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}
