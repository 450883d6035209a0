import type { TagBus } from './tag-bus.js';
import type { TagSample } from './tag-sample.js';

/** OPC UA's status for "the connection to the data source is lost" (Part 4, 7.34.2), used for every kind of source. */
export const BAD_NO_COMMUNICATION = 0x80310000;

/**
 * Makes a source's loss of connection visible in the data itself: when a source goes down it publishes, for each of
 * its tags, a bad-quality sample `BadNoCommunication` at the moment of the loss (put on the source's timeline by the
 * clock stage). Windows then see the gap — a held value is not stretched across an outage — and the buffer keeps
 * the marker, so a window assembled later from history sees the same gap.
 *
 * After the reconnect, a source that reports by exception sends each tag's current value with the time it last
 * changed, which may be before the loss. Such a value is current *now*: `adjust` restamps it to its arrival (gateway
 * time, mapped by the clock stage) so it is not hidden behind its own loss marker.
 */
export class ConnectionMarkers {
  /** Tag → source time of its loss marker, until the tag's first sample after the reconnect. */
  readonly #lostAt = new Map<string, number>();
  /**
   * Tags that delivered a sample in this run. Only they are marked: a source that never connected has no values to
   * hold (and no measured clock offset to put a marker on its timeline; a marker stamped with the gateway's clock
   * would sit hours away from a PLC whose clock is off, and its first values would look like a clock step).
   */
  readonly #seen = new Set<string>();

  constructor(
    private readonly bus: TagBus,
    private readonly source: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The source lost its connection: marks `tags` bad now. Tags already marked are not marked again. */
  lost(tags: Iterable<string>): void {
    const batch: TagSample[] = [];
    const at = this.now();
    for (const tag of tags) {
      if (this.#lostAt.has(tag) || !this.#seen.has(tag)) continue;
      batch.push({
        tag, value: Number.NaN, ts: at, timeBase: 'gateway', quality: 'bad',
        statusCode: BAD_NO_COMMUNICATION, statusName: 'BadNoCommunication', source: this.source,
      });
    }
    if (batch.length === 0) return;
    this.bus.publish(batch);
    // The clock stage rewrote ts in place onto the source's timeline.
    for (const s of batch) this.#lostAt.set(s.tag, s.ts);
  }

  /** Call on each sample from the source before publishing it: restamps a first value older than its loss marker. */
  adjust(sample: TagSample): void {
    this.#seen.add(sample.tag);
    if (this.#lostAt.size === 0) return;
    const lostAt = this.#lostAt.get(sample.tag);
    if (lostAt === undefined) return;
    this.#lostAt.delete(sample.tag);
    if (sample.ts <= lostAt) {
      sample.ts = this.now();
      sample.timeBase = 'gateway';
    }
  }

  /** Tags currently marked lost. */
  get lostCount(): number {
    return this.#lostAt.size;
  }
}
