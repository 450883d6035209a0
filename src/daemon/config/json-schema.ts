import { ConfigSchema } from './schema.js';

/** The JSON Schema of the config file, for editors (committed as schema/lineguard.schema.json). */
export function jsonSchemaText(): string {
  const schema = { $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(ConfigSchema)) };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
