import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/** The metadata_props key under which the training scripts store the model's Lineguard metadata (JSON). */
export const LINEGUARD_METADATA_KEY = 'lineguard';

/**
 * The Lineguard metadata contract (schema 1) written by models/training. Unknown fields are allowed (a newer
 * training script may add some); `recommendedAlert` and `training` are free-form and only displayed.
 */
export const LineguardMetadataSchema = Type.Object({
  schema: Type.Literal(1),
  name: Type.String(),
  version: Type.String({ minLength: 1 }),
  task: Type.Optional(Type.String()),
  window: Type.Optional(Type.Integer({ minimum: 1 })),
  inputs: Type.Array(
    Type.Object({
      name: Type.String(),
      unit: Type.Optional(Type.String()),
      mean: Type.Number(),
      std: Type.Number({ exclusiveMinimum: 0 }),
      description: Type.Optional(Type.String()),
    }),
    { minItems: 1 },
  ),
  outputs: Type.Array(
    Type.Object({
      name: Type.String(),
      kind: Type.Union([Type.Literal('probability'), Type.Literal('probabilities'), Type.Literal('regression'), Type.Literal('score')]),
      labels: Type.Optional(Type.Array(Type.String())),
      unit: Type.Optional(Type.String()),
    }),
  ),
  recommendedAlert: Type.Optional(Type.Unknown()),
  training: Type.Optional(Type.Unknown()),
});

export type LineguardMetadata = Static<typeof LineguardMetadataSchema>;

/**
 * Parses and checks the metadata JSON. Throws an Error listing every problem (a model whose metadata is wrong
 * would be fed wrongly normalised values, so it must not load silently).
 */
export function parseLineguardMetadata(json: string): LineguardMetadata {
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    throw new Error(`metadata "${LINEGUARD_METADATA_KEY}" is not JSON: ${(err as Error).message}`);
  }
  if (!Value.Check(LineguardMetadataSchema, data)) {
    const problems = [...Value.Errors(LineguardMetadataSchema, data)].slice(0, 5).map((e) => `${e.path || '/'} ${e.message}`);
    throw new Error(`metadata "${LINEGUARD_METADATA_KEY}" does not follow schema 1: ${problems.join('; ')}`);
  }
  return data;
}
