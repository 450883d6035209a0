import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseLineguardMetadata } from '../../../src/runtime/lineguard-metadata.js';
import { ModelFileError, parseModelBytes, readModelFile } from '../../../src/runtime/model-file.js';
import { OnnxFormatError, readOnnxModelHeader } from '../../../src/runtime/onnx-model-proto.js';
import { fixture } from './runtime-context.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('readOnnxModelHeader', () => {
  it('reads the header and metadata_props of a fixture', () => {
    const header = readOnnxModelHeader(readFileSync(fixture('last-value.onnx')));
    expect(header).toMatchObject({
      irVersion: 7, producerName: 'lineguard-fixtures', opsets: [{ domain: '', version: 13 }],
      docString: 'failure_probability = input[:, -1, 0:1]; window_mean = mean(input, axis=1)',
    });
    expect(Object.keys(header.metadata)).toEqual(['lineguard']);
    expect(JSON.parse(header.metadata.lineguard!)).toMatchObject({ schema: 1, name: 'last-value', version: '1.0.0', window: 4 });
  });

  it('reads a model without metadata', () => {
    expect(readOnnxModelHeader(readFileSync(fixture('no-metadata.onnx'))).metadata).toEqual({});
  });

  it('rejects corrupt, truncated, empty and non-ONNX bytes', () => {
    expect(() => readOnnxModelHeader(readFileSync(fixture('corrupt.onnx')))).toThrow(OnnxFormatError);
    const good = readFileSync(fixture('last-value.onnx'));
    expect(() => readOnnxModelHeader(good.subarray(0, good.length - 7))).toThrow(OnnxFormatError);
    expect(() => readOnnxModelHeader(new Uint8Array())).toThrow('the file is empty');
    expect(() => readOnnxModelHeader(Buffer.from('{"not": "a model"}'))).toThrow(OnnxFormatError);
  });
});

describe('parseLineguardMetadata', () => {
  const valid = { schema: 1, name: 'x', version: '1.2.3', inputs: [{ name: 'a', mean: 0, std: 1 }], outputs: [{ name: 'y', kind: 'probability' }] };

  it('accepts the schema-1 contract, extra fields included', () => {
    expect(parseLineguardMetadata(JSON.stringify({ ...valid, future: true }))).toMatchObject({ version: '1.2.3' });
  });

  it('lists what is wrong', () => {
    expect(() => parseLineguardMetadata('{')).toThrow(/not JSON/);
    const bad = { ...valid, schema: 2, inputs: [{ name: 'a', mean: 0, std: 0 }] };
    expect(() => parseLineguardMetadata(JSON.stringify(bad))).toThrow(/does not follow schema 1: .*\/schema.*\/inputs\/0\/std/);
  });
});

describe('readModelFile', () => {
  it('hashes the bytes and builds the version from metadata and hash', async () => {
    const file = await readModelFile(fixture('last-value.onnx'));
    expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(file.version).toBe(`1.0.0+${file.sha256.slice(0, 12)}`);
    expect(file.metadata?.inputs.map((i) => i.name)).toEqual(['a', 'b']);
    const plain = await readModelFile(fixture('no-metadata.onnx'));
    expect(plain.metadata).toBeUndefined();
    expect(plain.version).toBe(`sha256:${plain.sha256.slice(0, 12)}`);
  });

  it('reports missing, corrupt and bad-metadata files with a code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lg-model-file-'));
    dirs.push(dir);
    await expect(readModelFile(join(dir, 'nope.onnx'))).rejects.toMatchObject({ code: 'missing', message: expect.stringContaining('does not exist') });
    await expect(readModelFile(fixture('corrupt.onnx'))).rejects.toMatchObject({ code: 'corrupt', message: expect.stringContaining('is not a valid ONNX model') });
    await expect(readModelFile(dir)).rejects.toMatchObject({ code: 'unreadable' });

    // Same graph, metadata with std 0: refused (z-scoring would divide by zero).
    const bytes = readFileSync(fixture('last-value.onnx'));
    const text = bytes.toString('latin1').replace('"std":2.0', '"std":0.0');
    expect(text).not.toBe(bytes.toString('latin1'));
    const path = join(dir, 'bad-meta.onnx');
    writeFileSync(path, Buffer.from(text, 'latin1'));
    const err = await readModelFile(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err).toMatchObject({ code: 'bad_metadata', message: expect.stringContaining('/inputs/1/std') });
  });

  it('parseModelBytes gives the same result as reading the file', async () => {
    const file = await readModelFile(fixture('classes.onnx'));
    expect(parseModelBytes(file.path, file.bytes).version).toBe(file.version);
  });
});
