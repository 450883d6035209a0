import type { OpcuaTagConfig } from './config.js';

/**
 * Why a tag is degraded decides how it is retried:
 * - `resolve`: its namespace URI or index is not on the server → re-read the NamespaceArray and try again;
 * - `create`: the server refused the monitored item (BadNodeIdUnknown, refused deadband...) → create it again;
 * - `status`: a live item started reporting a configuration status (node deleted) → delete and re-create it;
 * - `value`: the value has a shape the gateway does not carry (array without arrayIndex) → no retry, the config
 *   must change; cleared as soon as a usable value arrives;
 * - `read`: a polled read returned a configuration status → the next poll is the retry.
 */
export type DegradedKind = 'resolve' | 'create' | 'status' | 'value' | 'read';

export interface DegradedTag {
  tag: string;
  nodeId: string;
  reason: string;
  kind: DegradedKind;
  since: number;
}

/** Per-tag state of one server's tags: degraded reasons and last update times. Arrays, not objects: 10k tags. */
export class TagStatusBoard {
  readonly #tags: readonly OpcuaTagConfig[];
  readonly #lastUpdate: Float64Array;
  readonly #degraded = new Map<number, DegradedTag>();
  #epoch = 0;

  constructor(tags: readonly OpcuaTagConfig[]) {
    this.#tags = tags;
    this.#lastUpdate = new Float64Array(tags.length);
  }

  get size(): number {
    return this.#tags.length;
  }

  /** Marks a tag degraded; returns true when the reason is new (so the caller logs once, not per retry). */
  degrade(index: number, reason: string, kind: DegradedKind, now = Date.now()): boolean {
    const current = this.#degraded.get(index);
    if (current && current.reason === reason && current.kind === kind) return false;
    const cfg = this.#tags[index]!;
    this.#degraded.set(index, { tag: cfg.tag, nodeId: cfg.nodeId, reason, kind, since: current?.since ?? now });
    return true;
  }

  /** Clears a degradation; returns true when the tag was degraded. */
  recover(index: number): boolean {
    return this.#degraded.delete(index);
  }

  isDegraded(index: number): boolean {
    return this.#degraded.has(index);
  }

  kindOf(index: number): DegradedKind | undefined {
    return this.#degraded.get(index)?.kind;
  }

  /** Tag indices degraded for one of `kinds`. */
  degradedIndices(kinds: readonly DegradedKind[]): number[] {
    const out: number[] = [];
    for (const [index, d] of this.#degraded) if (kinds.includes(d.kind)) out.push(index);
    return out;
  }

  get degradedCount(): number {
    return this.#degraded.size;
  }

  /** Degraded tags for /healthz, oldest first, at most `limit`. */
  degraded(limit = 50): DegradedTag[] {
    return [...this.#degraded.values()].sort((a, b) => a.since - b.since).slice(0, limit);
  }

  /** Records an update; hot path. */
  touch(index: number, now: number): void {
    this.#lastUpdate[index] = now;
  }

  /** Start of the age clock for tags that have not reported yet (the session start). */
  resetEpoch(now: number): void {
    this.#epoch = now;
  }

  /** Seconds since the tag's last update (or since the session start when it has not reported yet). */
  ageOf(index: number, now: number): number {
    return (now - Math.max(this.#lastUpdate[index]!, this.#epoch)) / 1000;
  }

  /** Seconds since the last update of every healthy tag (since the session start for tags that never reported). */
  ages(now: number): Float64Array {
    const out = new Float64Array(this.#tags.length - this.#degraded.size);
    let n = 0;
    for (let i = 0; i < this.#tags.length; i++) {
      if (this.#degraded.has(i)) continue;
      out[n++] = this.ageOf(i, now);
    }
    return out;
  }
}

/** max / p50 / p99 of a set of ages (seconds); zeros when empty. */
export function summarizeAges(ages: Float64Array): { max: number; p50: number; p99: number } {
  if (ages.length === 0) return { max: 0, p50: 0, p99: 0 };
  const sorted = Float64Array.from(ages).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!;
  return { max: sorted[sorted.length - 1]!, p50: at(0.5), p99: at(0.99) };
}
