import type { ClientSession, ReadValueIdOptions } from 'node-opcua';
import type { Logger } from 'pino';
import type { TagValue } from '../../core/tag-sample.js';
import type { OpcuaServerConfig } from './config.js';
import type { Opcua } from './opcua-module.js';
import type { SampleSink } from './sample-sink.js';
import { bounded } from './session-opener.js';
import { pollGroups, type ResolvedTag } from './tag-plan.js';
import { mapDataValue, type DataValueLike } from './value-mapping.js';
import { monotonicMs } from '../../core/source-clock.js';

export interface PollerOptions {
  opcua: Opcua;
  session: ClientSession;
  cfg: OpcuaServerConfig;
  sink: SampleSink;
  log: Logger;
  onContact: () => void;
  onLost: (reason: string) => void;
}

interface Last {
  value: TagValue;
  statusCode: number;
  ts: number;
}

/**
 * `mode: poll` tags: read on their period, for servers that limit subscriptions or monitored items.
 *
 * A poll behaves like a subscription seen from downstream: a value is published only when it changed (value,
 * status or source timestamp) and, with an absolute deadband, only when it moved by more than the deadband.
 * Reads of one period run one after another (never overlapping); a read that fails as a whole means the session
 * is gone, and the source reconnects.
 */
export class Poller {
  readonly #o: PollerOptions;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #groups = new Map<number, ResolvedTag[]>();
  readonly #last = new Map<number, Last>();
  #stopped = false;

  constructor(o: PollerOptions) {
    this.#o = o;
  }

  /** Longest poll period, for the silence watchdog. */
  get maxPeriodMs(): number {
    return Math.max(0, ...this.#groups.keys());
  }

  get tagCount(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.length;
    return n;
  }

  /** Adds tags (first start, or tags recovered by a retry); each new period gets its own loop. */
  add(tags: readonly ResolvedTag[]): void {
    for (const [period, items] of pollGroups(tags, this.#o.cfg.tags)) {
      const group = this.#groups.get(period);
      if (group) {
        const known = new Set(group.map((t) => t.index));
        group.push(...items.filter((t) => !known.has(t.index)));
      } else {
        this.#groups.set(period, [...items]);
        this.#schedule(period, 0);
      }
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #schedule(period: number, delay: number): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      const started = monotonicMs();
      this.#pollOnce(period)
        .then(() => this.#schedule(period, Math.max(0, period - (monotonicMs() - started))))
        .catch((err: Error) => {
          if (!this.#stopped) this.#o.onLost(`read failed: ${err.message}`);
        });
    }, delay);
    this.#timers.add(timer);
  }

  async #pollOnce(period: number): Promise<void> {
    const { opcua, session, cfg, sink } = this.#o;
    const group = this.#groups.get(period) ?? [];
    for (let i = 0; i < group.length && !this.#stopped; i += cfg.maxItemsPerCall) {
      const chunk = group.slice(i, i + cfg.maxItemsPerCall);
      const nodesToRead: ReadValueIdOptions[] = chunk.map((t) => ({
        nodeId: t.nodeId,
        attributeId: opcua.AttributeIds.Value,
        ...(t.indexRange !== undefined ? { indexRange: new opcua.NumericRange(t.indexRange) } : {}),
      }));
      const values = await bounded(session.read(nodesToRead, 0), cfg.requestTimeoutMs, 'read');
      if (this.#stopped) return;
      this.#o.onContact();
      const now = Date.now();
      values.forEach((dv, k) => {
        const index = chunk[k]!.index;
        const mapped = mapDataValue(dv as unknown as DataValueLike, chunk[k]!.indexRange !== undefined, now);
        if (mapped.kind === 'sample' && !this.#changed(index, mapped.value, mapped.statusCode, mapped.ts)) return;
        sink.accept(index, mapped, now, 'read');
      });
      sink.flush();
    }
  }

  /** True when the value should be published; remembers it as the last published one. */
  #changed(index: number, value: TagValue, statusCode: number, ts: number): boolean {
    const last = this.#last.get(index);
    if (last && last.statusCode === statusCode) {
      if (last.ts === ts && Object.is(last.value, value)) return false;
      const deadband = this.#o.cfg.tags[index]!.deadband;
      if (deadband?.type === 'absolute' && typeof value === 'number' && typeof last.value === 'number' && Math.abs(value - last.value) <= deadband.value) {
        return false;
      }
    }
    this.#last.set(index, { value, statusCode, ts });
    return true;
  }
}
