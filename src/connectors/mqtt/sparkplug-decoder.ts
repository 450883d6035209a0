import sparkplugProto from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import type { DecodeResult } from './json-decoder.js';
import type { DropReason, IngestProblem } from './ingest-problem.js';
import { int64, metricValue, type Int64Field, type RawMetric } from './sparkplug-values.js';
import { MAX_TAGS_PER_SOURCE } from './tag-admission.js';
import { parseSparkplugTopic, type SparkplugTopic } from './sparkplug-topic.js';

const { Payload } = sparkplugProto.org.eclipse.tahu.protobuf;

/** Edge node sessions one source keeps at most (each holds its alias tables); births of more nodes are dropped. */
export const MAX_NODE_SESSIONS = 10_000;
/** Devices one edge node session keeps at most. */
export const MAX_DEVICES_PER_NODE = 1_000;
/** Metrics one birth certificate may declare (the rest are dropped, counted as too_many_tags). */
export const MAX_BIRTH_METRICS = MAX_TAGS_PER_SOURCE;

/** Status of a sample for a metric sent with is_null (Sparkplug has no status codes; OPC UA's generic Bad). */
export const SPARKPLUG_NULL_STATUS = { statusCode: 0x80000000, statusName: 'BadSparkplugNullValue' } as const;
/** Status of a 64-bit integer beyond 2^53: the value is the nearest double (OPC UA's generic Uncertain). */
export const SPARKPLUG_INEXACT_STATUS = { statusCode: 0x40000000, statusName: 'UncertainInexactInt64' } as const;

interface RawPayload {
  timestamp?: Int64Field;
  seq?: Int64Field;
  metrics?: RawMetric[] | null;
}

interface MetricDef {
  name: string;
  datatype: number | undefined;
}

/** Metrics an edge node or device declared in its birth certificate. */
interface MetricTable {
  byAlias: Map<number, MetricDef>;
  byName: Map<string, MetricDef>;
}

/** What the host knows of one edge node's current session (from its NBIRTH to its NDEATH). */
interface NodeSession {
  group: string;
  node: string;
  bdSeq: number | undefined;
  metrics: MetricTable;
  devices: Map<string, MetricTable>;
  /** The sequence number the next message should carry. */
  nextSeq: number | undefined;
  /** Sequence numbers skipped over and not yet arrived, with the time the reorder timeout ends. */
  missing: Set<number>;
  reorderDeadline: number | undefined;
}

/** Things worth a counter that are not drops. */
export type SparkplugEvent = 'node_birth' | 'device_birth' | 'node_death' | 'device_death' | 'stale_death' | 'seq_gap' | 'ignored';

export interface SparkplugResult extends DecodeResult {
  events: SparkplugEvent[];
  /**
   * Tags whose values are stale from now on (spec: on NDEATH/DDEATH a host marks every metric of that node or device
   * stale): the source publishes a BadNoCommunication marker for each.
   */
  stale?: string[];
  /** The edge node whose session the host lost track of: a rebirth request would resynchronize it. */
  rebirth?: { group: string; node: string; reason: string };
}

export interface SparkplugDecoderOptions {
  /** Value of TagSample.source. */
  source: string;
  /** Prepended to `<group>.<node>[.<device>].<metric>`. */
  tagPrefix: string;
  /** Spec "Reorder Timeout"; 0 = a gap is an immediate loss of sync. */
  reorderTimeoutMs: number;
}

/**
 * The host side of Sparkplug B for one source: keeps each edge node's session (alias tables from NBIRTH/DBIRTH,
 * bdSeq, sequence numbers) and turns NBIRTH/DBIRTH/NDATA/DDATA metrics into TagSamples.
 *
 * Data the host cannot decode because it missed the birth (data before birth, an alias the birth did not declare)
 * is dropped and reported with `rebirth`, as the spec's host behaviour asks: a host that cannot trust its view of
 * a node requests a rebirth rather than guess names. Sequence gaps follow "Sparkplug Host Application Message
 * Ordering" (spec §5.x): the values are still ingested (each carries its own timestamp); a gap still open after
 * the reorder timeout (`expireReorder`) asks for a rebirth.
 *
 * Pure apart from the state it keeps; the caller passes the clock and sends the rebirth requests.
 */
export class SparkplugDecoder {
  readonly #nodes = new Map<string, NodeSession>();

  constructor(private readonly options: SparkplugDecoderOptions) {}

  handle(topic: string, payload: Buffer, arrivalMs: number): SparkplugResult {
    const result: SparkplugResult = { samples: [], problems: [], events: [] };
    const parsed = parseSparkplugTopic(topic);
    if (parsed === 'state' || (parsed && (parsed.type === 'NCMD' || parsed.type === 'DCMD'))) {
      result.events.push('ignored');
      return result;
    }
    if (!parsed) {
      result.problems.push({ reason: 'decode_error', scope: 'message', detail: `not a Sparkplug B topic: ${topic}` });
      return result;
    }
    let decoded: RawPayload;
    try {
      decoded = Payload.decode(payload) as unknown as RawPayload;
    } catch (err) {
      result.problems.push({ reason: 'decode_error', scope: 'message', detail: `not a Sparkplug B payload: ${(err as Error).message}` });
      return result;
    }
    const key = `${parsed.group}/${parsed.node}`;
    const session = this.#nodes.get(key);
    const seq = validSeq(int64(decoded.seq));
    const ts = validTime(int64(decoded.timestamp)) ?? arrivalMs;

    switch (parsed.type) {
      case 'NBIRTH':
        this.#nodeBirth(key, parsed, decoded, seq, ts, result);
        break;
      case 'NDEATH':
        this.#nodeDeath(key, session, decoded, result);
        break;
      case 'DBIRTH':
      case 'DDATA':
      case 'NDATA':
      case 'DDEATH': {
        if (!session) {
          this.#lostSync(result, parsed, 'no_birth', `${parsed.type} from ${key} before its NBIRTH`);
          break;
        }
        if (seq !== undefined) this.#checkSeq(session, seq, arrivalMs, result);
        if (parsed.type === 'DBIRTH') this.#deviceBirth(session, parsed.device!, decoded, ts, result);
        else if (parsed.type === 'DDEATH') {
          const table = session.devices.get(parsed.device!);
          if (table && session.devices.delete(parsed.device!)) {
            result.events.push('device_death');
            result.stale = this.#tagsOf(session, parsed.device, table);
          }
        } else if (parsed.type === 'NDATA') this.#data(session, undefined, session.metrics, decoded, ts, result);
        else {
          const table = session.devices.get(parsed.device!);
          if (!table) this.#lostSync(result, parsed, 'no_birth', `DDATA from ${key}/${parsed.device} before its DBIRTH`);
          else this.#data(session, parsed.device, table, decoded, ts, result);
        }
        break;
      }
    }
    return result;
  }

  /**
   * Edge nodes whose missing sequence numbers did not arrive within the reorder timeout: they need a rebirth.
   * Call it periodically; each gap is reported once.
   */
  expireReorder(nowMs: number): Array<{ group: string; node: string }> {
    const expired: Array<{ group: string; node: string }> = [];
    for (const session of this.#nodes.values()) {
      if (session.reorderDeadline !== undefined && session.reorderDeadline <= nowMs) {
        session.missing.clear();
        session.reorderDeadline = undefined;
        expired.push({ group: session.group, node: session.node });
      }
    }
    return expired;
  }

  /** Edge nodes with a live session, and their devices. */
  online(): Array<{ node: string; devices: string[] }> {
    return [...this.#nodes.entries()].map(([key, s]) => ({ node: key, devices: [...s.devices.keys()] }));
  }

  #nodeBirth(key: string, topic: SparkplugTopic, payload: RawPayload, seq: number | undefined, ts: number, result: SparkplugResult): void {
    if (!this.#nodes.has(key) && this.#nodes.size >= MAX_NODE_SESSIONS) {
      result.problems.push({ reason: 'too_many_sessions', scope: 'message', detail: `NBIRTH of ${key} refused: ${MAX_NODE_SESSIONS} edge nodes are online` });
      return;
    }
    const metrics = payload.metrics ?? [];
    const bdSeqMetric = metrics.find((m) => m.name === 'bdSeq');
    const session: NodeSession = {
      group: topic.group,
      node: topic.node,
      bdSeq: bdSeqMetric ? int64(bdSeqMetric.longValue ?? bdSeqMetric.intValue) : undefined,
      metrics: emptyTable(),
      // A new NBIRTH opens a new session: the devices will send their DBIRTH again (spec: DBIRTH follows NBIRTH).
      devices: new Map(),
      nextSeq: seq === undefined ? undefined : (seq + 1) % 256,
      missing: new Set(),
      reorderDeadline: undefined,
    };
    this.#nodes.set(key, session);
    result.events.push('node_birth');
    this.#birthMetrics(session, undefined, session.metrics, metrics, ts, result);
  }

  #nodeDeath(key: string, session: NodeSession | undefined, payload: RawPayload, result: SparkplugResult): void {
    if (!session) return;
    const bdSeqMetric = (payload.metrics ?? []).find((m) => m.name === 'bdSeq');
    const bdSeq = bdSeqMetric ? int64(bdSeqMetric.longValue ?? bdSeqMetric.intValue) : undefined;
    // The will of an earlier session can arrive after the NBIRTH of the next one (spec: bdSeq correlates them).
    if (bdSeq !== undefined && session.bdSeq !== undefined && bdSeq !== session.bdSeq) {
      result.events.push('stale_death');
      return;
    }
    this.#nodes.delete(key);
    result.events.push('node_death');
    result.stale = [
      ...this.#tagsOf(session, undefined, session.metrics),
      ...[...session.devices].flatMap(([device, table]) => this.#tagsOf(session, device, table)),
    ];
  }

  #deviceBirth(session: NodeSession, device: string, payload: RawPayload, ts: number, result: SparkplugResult): void {
    if (!session.devices.has(device) && session.devices.size >= MAX_DEVICES_PER_NODE) {
      result.problems.push({
        reason: 'too_many_sessions', scope: 'message',
        detail: `DBIRTH of ${session.group}/${session.node}/${device} refused: the node has ${MAX_DEVICES_PER_NODE} devices online`,
      });
      return;
    }
    const table = emptyTable();
    session.devices.set(device, table);
    result.events.push('device_birth');
    this.#birthMetrics(session, device, table, payload.metrics ?? [], ts, result);
  }

  #birthMetrics(
    session: NodeSession, device: string | undefined, table: MetricTable, metrics: RawMetric[], ts: number, result: SparkplugResult,
  ): void {
    if (metrics.length > MAX_BIRTH_METRICS) {
      result.problems.push({
        reason: 'too_many_tags', scope: 'value',
        detail: `birth certificate declares ${metrics.length} metrics; the ${metrics.length - MAX_BIRTH_METRICS} beyond ${MAX_BIRTH_METRICS} are dropped`,
      });
    }
    for (const m of metrics.slice(0, MAX_BIRTH_METRICS)) {
      if (!m.name) {
        result.problems.push({ reason: 'decode_error', scope: 'value', detail: 'birth metric without a name' });
        continue;
      }
      const def: MetricDef = { name: m.name, datatype: m.datatype || undefined };
      table.byName.set(m.name, def);
      const alias = int64(m.alias);
      if (alias !== undefined) table.byAlias.set(alias, def);
      this.#sample(session, device, def, m, ts, result);
    }
  }

  #data(
    session: NodeSession, device: string | undefined, table: MetricTable, payload: RawPayload, ts: number, result: SparkplugResult,
  ): void {
    for (const m of payload.metrics ?? []) {
      const alias = int64(m.alias);
      const def = alias !== undefined ? table.byAlias.get(alias) : m.name ? table.byName.get(m.name) : undefined;
      if (!def) {
        const what = alias !== undefined ? `alias ${alias}` : m.name ? `metric "${m.name}"` : 'a metric without name or alias';
        const where = device ? `${session.group}/${session.node}/${device}` : `${session.group}/${session.node}`;
        this.#lostSync(result, session, 'unknown_alias', `${what} of ${where} is not in its birth certificate`, 'value');
        continue;
      }
      this.#sample(session, device, def, m, ts, result);
    }
  }

  #sample(session: NodeSession, device: string | undefined, def: MetricDef, m: RawMetric, ts: number, result: SparkplugResult): void {
    if (isControlMetric(def.name)) return;
    if (m.isTransient) {
      result.problems.push({ reason: 'transient', scope: 'value', detail: `${def.name} is transient` });
      return;
    }
    const value = metricValue(m, m.datatype || def.datatype);
    if ('reason' in value) {
      result.problems.push({ reason: value.reason, scope: 'value', detail: `${def.name}: ${value.reason.replace('_', ' ')}` });
      return;
    }
    const tag = this.#tagName(session, device, def.name);
    const at = validTime(int64(m.timestamp)) ?? ts;
    const source = this.options.source;
    // A null is the device saying "no value now": a bad-quality sample, so a window sees the gap instead of holding
    // the last value over it.
    if ('null' in value) result.samples.push({ tag, value: Number.NaN, ts: at, quality: 'bad', ...SPARKPLUG_NULL_STATUS, source });
    else if (value.inexact) result.samples.push({ tag, value: value.value, ts: at, quality: 'uncertain', ...SPARKPLUG_INEXACT_STATUS, source });
    else result.samples.push({ tag, value: value.value, ts: at, quality: 'good', source });
  }

  #tagName(session: NodeSession, device: string | undefined, metric: string): string {
    return `${this.options.tagPrefix}${session.group}.${session.node}${device === undefined ? '' : `.${device}`}.${metric}`;
  }

  /** The tags of a node's or device's metrics (its birth certificate), control metrics excepted. */
  #tagsOf(session: NodeSession, device: string | undefined, table: MetricTable): string[] {
    return [...table.byName.keys()].filter((name) => !isControlMetric(name)).map((name) => this.#tagName(session, device, name));
  }

  #checkSeq(session: NodeSession, seq: number, nowMs: number, result: SparkplugResult): void {
    if (session.nextSeq === undefined || seq === session.nextSeq) {
      session.nextSeq = (seq + 1) % 256;
      return;
    }
    if (session.missing.delete(seq)) {
      if (session.missing.size === 0) session.reorderDeadline = undefined;
      return;
    }
    const ahead = (seq - session.nextSeq + 256) % 256;
    // More than half the ring behind: a duplicate or a very late message, not a gap.
    if (ahead >= 128) return;
    for (let k = 0; k < ahead; k++) session.missing.add((session.nextSeq + k) % 256);
    session.nextSeq = (seq + 1) % 256;
    result.events.push('seq_gap');
    if (this.options.reorderTimeoutMs === 0) {
      session.missing.clear();
      result.rebirth ??= { group: session.group, node: session.node, reason: `sequence gap before seq ${seq}` };
    } else {
      session.reorderDeadline ??= nowMs + this.options.reorderTimeoutMs;
    }
  }

  #lostSync(
    result: SparkplugResult, at: { group: string; node: string }, reason: DropReason, detail: string, scope: IngestProblem['scope'] = 'message',
  ): void {
    result.problems.push({ reason, scope, detail });
    result.rebirth ??= { group: at.group, node: at.node, reason: detail };
  }
}

/** Largest time a JS Date can hold (±8.64e15 ms). */
const MAX_TIME_MS = 8.64e15;

/**
 * A timestamp a sample can carry, or undefined for one that is unset (0) or beyond any date (a garbled uint64): such a
 * sample would stay the newest of its tag forever, in every window the models read.
 */
function validTime(ms: number | undefined): number | undefined {
  return ms !== undefined && ms > 0 && ms <= MAX_TIME_MS ? ms : undefined;
}

/**
 * A sequence number the ordering checks can use: 0..255 (spec: seq wraps at 256). A device that sends anything
 * else is not following the spec; its values are still ingested, but its seq cannot say what is missing.
 */
function validSeq(seq: number | undefined): number | undefined {
  return seq !== undefined && Number.isInteger(seq) && seq >= 0 && seq <= 255 ? seq : undefined;
}

function emptyTable(): MetricTable {
  return { byAlias: new Map(), byName: new Map() };
}

/** Session bookkeeping and commands, not process data. */
function isControlMetric(name: string): boolean {
  return name === 'bdSeq' || name.startsWith('Node Control/') || name.startsWith('Device Control/');
}
