import type { TagBus } from '../core/tag-bus.js';
import type { Quality, TagSample, TagValue } from '../core/tag-sample.js';

/** Tags remembered at most: a misconfigured MQTT wildcard must not grow the daemon's memory without bound. */
const MAX_TAGS = 20_000;

/** The last sample of one tag, as the status page's tag table shows it. */
export interface TagRow {
  tag: string;
  source: string;
  value: TagValue;
  quality: Quality;
  /** Name of the source's status code when it has one (`BadSensorFailure`). */
  statusName?: string;
  /** Source time of the last sample, epoch ms (after the source's clock policy). */
  ts: number;
  /** Gateway time it arrived, epoch ms. */
  receivedAt: number;
  /** Samples seen since the daemon started (or the table was cleared). */
  samples: number;
}

/**
 * The last value of every tag on the tag bus: what the status page lists per source ("last value age", good / bad /
 * stale counts, the searchable tag table). Only the newest sample per tag, in memory; the history is in the buffer.
 */
export class TagTable {
  readonly #rows = new Map<string, TagRow>();
  #unsubscribe: (() => void) | undefined;
  /** Tags not remembered because MAX_TAGS was reached (shown on the page, never silent). */
  #ignoredTags = new Set<string>();

  /** Subscribes to the bus; idempotent. */
  follow(bus: TagBus): void {
    this.#unsubscribe ??= bus.subscribe(this.#onSamples);
  }

  /** Removes the bus listener (the daemon stops). */
  unfollow(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  rows(): TagRow[] {
    return [...this.#rows.values()];
  }

  /** Tags seen but not remembered because the table is full. */
  get ignored(): number {
    return this.#ignoredTags.size;
  }

  // On the tag bus (every sample): the row is updated in place, no allocation per sample. The newest *arrival* is
  // the current value — not the newest source time, which after a PLC clock stepped back would freeze the row.
  readonly #onSamples = (samples: readonly TagSample[]): void => {
    const now = Date.now();
    for (const s of samples) {
      const row = this.#rows.get(s.tag);
      if (!row) {
        if (this.#rows.size >= MAX_TAGS) {
          if (this.#ignoredTags.size < MAX_TAGS) this.#ignoredTags.add(s.tag);
          continue;
        }
        this.#rows.set(s.tag, toRow(s, now, 1));
        continue;
      }
      row.source = s.source;
      row.value = s.value;
      row.quality = s.quality;
      row.ts = s.ts;
      row.receivedAt = s.receivedAt ?? now;
      row.samples++;
      if (s.statusName !== undefined) row.statusName = s.statusName;
      else delete row.statusName;
    }
  };
}

function toRow(s: TagSample, now: number, samples: number): TagRow {
  return {
    tag: s.tag, source: s.source, value: s.value, quality: s.quality, ts: s.ts, receivedAt: s.receivedAt ?? now, samples,
    ...(s.statusName !== undefined ? { statusName: s.statusName } : {}),
  };
}
