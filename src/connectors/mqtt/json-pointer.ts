/** JSON Pointer (RFC 6901), compiled once per configured value and evaluated per message. */

/** Returned when the pointer does not resolve (distinct from a JSON `null`). */
export const MISSING: unique symbol = Symbol('missing');

export type JsonPointer = (doc: unknown) => unknown;

const ARRAY_INDEX = /^(0|[1-9]\d*)$/;

/** Compiles `/a/b~1c/0` into a function. Throws a SyntaxError when the pointer is not "" and does not start with "/". */
export function compileJsonPointer(pointer: string): JsonPointer {
  if (pointer === '') return (doc) => doc;
  if (!pointer.startsWith('/')) throw new SyntaxError(`JSON pointer "${pointer}" must be empty or start with "/"`);
  const tokens = pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  return (doc) => {
    let node: unknown = doc;
    for (const token of tokens) {
      if (Array.isArray(node)) {
        if (!ARRAY_INDEX.test(token)) return MISSING;
        const index = Number(token);
        if (index >= node.length) return MISSING;
        node = node[index];
      } else if (node !== null && typeof node === 'object') {
        if (!Object.prototype.hasOwnProperty.call(node, token)) return MISSING;
        node = (node as Record<string, unknown>)[token];
      } else {
        return MISSING;
      }
    }
    return node;
  };
}
