import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { LINEGUARD_METADATA_KEY, parseLineguardMetadata, type LineguardMetadata } from './lineguard-metadata.js';
import { readOnnxModelHeader, type OnnxModelHeader } from './onnx-model-proto.js';

/**
 * One version of a model file: its bytes (what the session is created from, so the hash always describes the
 * model that runs), content hash, ONNX header and Lineguard metadata.
 */
export interface ModelFile {
  path: string;
  bytes: Uint8Array;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
  header: OnnxModelHeader;
  /** Undefined for a model without Lineguard metadata (it still runs: raw features, shapes from the session). */
  metadata: LineguardMetadata | undefined;
  /** `<metadata version>+<sha256 prefix>`, or `sha256:<prefix>` without metadata: what alerts and /healthz show. */
  version: string;
  mtimeMs: number;
}

/** Why a file cannot be used; `code` goes into health details and metric labels. */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
  constructor(readonly code: 'missing' | 'unreadable' | 'changing' | 'corrupt' | 'bad_metadata', message: string) {
    super(message);
  }
}

/** The short form of a content hash shown in versions. */
export function shortHash(sha256: string): string {
  return sha256.slice(0, 12);
}

/** Parses model bytes already in memory. Throws ModelFileError('corrupt' | 'bad_metadata'). */
export function parseModelBytes(path: string, bytes: Uint8Array, mtimeMs = 0): ModelFile {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  let header: OnnxModelHeader;
  try {
    header = readOnnxModelHeader(bytes);
  } catch (err) {
    throw new ModelFileError('corrupt', `${path} is not a valid ONNX model (${(err as Error).message})`);
  }
  let metadata: LineguardMetadata | undefined;
  const json = header.metadata[LINEGUARD_METADATA_KEY];
  if (json !== undefined) {
    try {
      metadata = parseLineguardMetadata(json);
    } catch (err) {
      throw new ModelFileError('bad_metadata', `${path}: ${(err as Error).message}`);
    }
  }
  const version = metadata ? `${metadata.version}+${shortHash(sha256)}` : `sha256:${shortHash(sha256)}`;
  return { path, bytes, sha256, header, metadata, version, mtimeMs };
}

/**
 * Reads a model file that may be being replaced right now. The file is stat'ed before and after reading; if it
 * changed in between (a copy in progress), it is reported as 'changing' so the caller retries later instead of
 * loading half a file.
 */
export async function readModelFile(path: string): Promise<ModelFile> {
  let before;
  try {
    before = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ModelFileError('missing', `model file ${path} does not exist`);
    throw new ModelFileError('unreadable', `model file ${path} cannot be read: ${(err as Error).message}`);
  }
  if (!before.isFile()) throw new ModelFileError('unreadable', `model file ${path} is not a regular file`);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ModelFileError('unreadable', `model file ${path} cannot be read: ${(err as Error).message}`);
  }
  const after = await stat(path).catch(() => undefined);
  if (!after || after.size !== before.size || after.mtimeMs !== before.mtimeMs || after.ino !== before.ino || bytes.length !== after.size) {
    throw new ModelFileError('changing', `model file ${path} changed while it was read (a copy in progress?)`);
  }
  // A Uint8Array that owns its memory: it is transferred to the worker thread.
  const owned = new Uint8Array(bytes.length);
  owned.set(bytes);
  return parseModelBytes(path, owned, after.mtimeMs);
}
