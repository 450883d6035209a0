import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';

/**
 * The alert payload's published contract: the JSON Schema in docs/alert-payload.md (its last ```json block), compiled
 * once, so process tests can check every alert a subscriber received against what subscribers are promised.
 */
function documentedSchema(): object {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/alert-payload.md'), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return JSON.parse(blocks[blocks.length - 1]!) as object;
}

const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(documentedSchema());

/** The schema errors of one payload, as readable lines ([] when it validates). */
export function alertSchemaErrors(payload: unknown): string[] {
  if (validate(payload)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}
