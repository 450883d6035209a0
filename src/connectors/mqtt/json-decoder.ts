import type { TagSample, TagValue } from '../../core/tag-sample.js';
import type { MqttSourceConfig, MqttValueConfig } from './config.js';
import type { IngestProblem } from './ingest-problem.js';
import { compileJsonPointer, MISSING, type JsonPointer } from './json-pointer.js';
import { parseTagTemplate, type TagTemplate } from './tag-template.js';

/** What one message turned into. */
export interface DecodeResult {
  samples: TagSample[];
  problems: IngestProblem[];
}

interface CompiledValue {
  tag: TagTemplate;
  pointer: JsonPointer;
  pointerText: string;
  coerce: (v: unknown) => TagValue | undefined;
}

type TimestampFormat = NonNullable<MqttSourceConfig['timestamp']>['format'];

const ISO_8601 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;
/** Largest time a JS Date can hold (±8.64e15 ms). */
const MAX_TIME_MS = 8.64e15;

/**
 * Turns JSON (or plain-number) payloads into TagSamples as the source config says: each configured value is
 * read by its JSON pointer and named by its tag template over the topic levels. Pure: no I/O, no clock (the
 * arrival time is passed in), never throws on payload content.
 */
export class JsonDecoder {
  readonly #values: CompiledValue[];
  readonly #timestamp: { pointer: JsonPointer; text: string; format: TimestampFormat } | undefined;

  /** @throws Error when a template or pointer in the config is invalid (the config check reports these first). */
  constructor(
    cfg: Pick<MqttSourceConfig, 'values' | 'timestamp'>,
    private readonly source: string,
  ) {
    this.#values = (cfg.values ?? []).map((value) => compileValue(value));
    this.#timestamp = cfg.timestamp
      ? { pointer: compileJsonPointer(cfg.timestamp.pointer), text: cfg.timestamp.pointer, format: cfg.timestamp.format ?? 'epoch_ms' }
      : undefined;
  }

  decode(topic: string, payload: Buffer, arrivalMs: number): DecodeResult {
    const samples: TagSample[] = [];
    const problems: IngestProblem[] = [];
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch {
      problems.push({ reason: 'not_json', scope: 'message', detail: `payload is not JSON: ${preview(payload)}` });
      return { samples, problems };
    }

    let ts = arrivalMs;
    if (this.#timestamp) {
      const raw = this.#timestamp.pointer(doc);
      const parsed = raw === MISSING ? undefined : parseTimestamp(raw, this.#timestamp.format);
      if (parsed === undefined) {
        const what = raw === MISSING ? 'is missing' : `is not ${this.#timestamp.format}: ${JSON.stringify(raw)?.slice(0, 40)}`;
        problems.push({ reason: 'bad_timestamp', scope: 'message', detail: `timestamp ${this.#timestamp.text} ${what}` });
        return { samples, problems };
      }
      ts = parsed;
    }

    const levels = topic.split('/');
    for (const value of this.#values) {
      const tag = value.tag.render(levels, topic);
      if (tag === undefined) {
        problems.push({ reason: 'bad_topic', scope: 'value', detail: `topic has too few levels for tag template (${levels.length})` });
        continue;
      }
      const raw = value.pointer(doc);
      if (raw === MISSING) {
        problems.push({ reason: 'missing_field', scope: 'value', detail: `${value.pointerText || '(payload)'} is missing for ${tag}` });
        continue;
      }
      const v = value.coerce(raw);
      if (v === undefined) {
        problems.push({
          reason: 'wrong_type', scope: 'value', detail: `${value.pointerText || '(payload)'} for ${tag} is ${describe(raw)}`,
        });
        continue;
      }
      samples.push({ tag, value: v, ts, quality: 'good', source: this.source });
    }
    return { samples, problems };
  }
}

function compileValue(value: MqttValueConfig): CompiledValue {
  const tag = parseTagTemplate(value.tag);
  if (typeof tag === 'string') throw new Error(tag);
  return { tag, pointer: compileJsonPointer(value.pointer ?? ''), pointerText: value.pointer ?? '', coerce: COERCE[value.type ?? 'auto'] };
}

const COERCE: Record<NonNullable<MqttValueConfig['type']>, (v: unknown) => TagValue | undefined> = {
  auto: (v) => {
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
    if (typeof v === 'boolean' || typeof v === 'string') return v;
    return undefined;
  },
  number: (v) => {
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'string' && v.trim() !== '') {
      const n = Number(v);
      return Number.isFinite(n) ? n : undefined;
    }
    return undefined;
  },
  boolean: (v) => {
    if (typeof v === 'boolean') return v;
    if (v === 0 || v === 1) return v === 1;
    if (v === 'true' || v === 'false') return v === 'true';
    return undefined;
  },
  string: (v) => {
    if (typeof v === 'string') return v;
    if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return String(v);
    return undefined;
  },
};

/** Epoch ms from a timestamp field, or undefined when it is not a valid time in that format. */
export function parseTimestamp(raw: unknown, format: TimestampFormat): number | undefined {
  let ms: number;
  if (format === 'iso8601') {
    if (typeof raw !== 'string' || !ISO_8601.test(raw)) return undefined;
    ms = Date.parse(raw);
  } else {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    ms = format === 'epoch_s' ? n * 1000 : n;
  }
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIME_MS ? ms : undefined;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** The first bytes of a payload, printable, for a log line. */
export function preview(payload: Buffer): string {
  const text = payload.subarray(0, 40).toString('utf8').replace(/[^\x20-\x7e]/g, '.');
  return payload.length > 40 ? `${text}... (${payload.length} bytes)` : text;
}
