import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { BufferConfigSchema, checkBufferConfig, type BufferConfig } from '../../../src/buffer/config.js';
import { bufferConfig } from './buffer-context.js';

function validate(input: unknown): { ok: boolean; value: unknown; errors: string[] } {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
  const value = structuredClone(input);
  const ok = ajv.validate(BufferConfigSchema, value);
  return { ok, value, errors: (ajv.errors ?? []).map((e) => `${e.instancePath} ${e.message}`) };
}

function issues(cfg: BufferConfig): string[] {
  const out: string[] = [];
  checkBufferConfig(cfg, (path, message) => out.push(`${path.join('.')}: ${message}`));
  return out;
}

describe('buffer config', () => {
  it('an empty section gets every default, and the defaults pass the cross-field checks', () => {
    const { ok, value } = validate({});
    expect(ok).toBe(true);
    expect(value).toEqual(bufferConfig());
    expect(issues(value as BufferConfig)).toEqual([]);
  });

  it('rejects unknown keys and bad units', () => {
    const { ok, errors } = validate({ flushIntervallMs: 100, retention: { maxAge: '7 days' } });
    expect(ok).toBe(false);
    expect(errors.join('\n')).toMatch(/additional properties/);
    expect(errors.join('\n')).toMatch(/retention\/maxAge/);
  });

  it('every field has a description', () => {
    const missing: string[] = [];
    const walk = (schema: Record<string, unknown>, path: string): void => {
      if (!schema.description) missing.push(path);
      const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [k, v] of Object.entries(props ?? {})) walk(v, `${path}.${k}`);
    };
    walk(BufferConfigSchema as unknown as Record<string, unknown>, 'buffer');
    expect(missing).toEqual([]);
  });

  it('cross-field checks: outbox inside the database bound, sane minimums, memory above one batch', () => {
    expect(
      issues(bufferConfig({ retention: { maxAge: '30s', maxSize: '500KB' }, outbox: { maxAlerts: 100, maxSize: '1MB' } })),
    ).toEqual([
      'retention.maxSize: must be at least 1MB (is 500KB)',
      'outbox.maxSize: must be smaller than retention.maxSize (500KB): alerts live in the same database as the samples',
      'retention.maxAge: must be at least 1m',
    ]);
    expect(issues(bufferConfig({ flushMaxRows: 50_000, memoryMaxSamples: 10_000 }))).toEqual([
      'memoryMaxSamples: must be at least flushMaxRows (50000): a batch is held in memory until it is committed',
    ]);
    expect(issues(bufferConfig({ file: 'state/' }))).toEqual(['file: names a directory; give a file name, e.g. lineguard.db']);
  });
});
