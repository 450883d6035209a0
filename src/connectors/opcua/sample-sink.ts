import type { Logger } from 'pino';
import { ConnectionMarkers } from '../../core/connection-markers.js';
import type { TagBus } from '../../core/tag-bus.js';
import type { TagSample } from '../../core/tag-sample.js';
import type { OpcuaTagConfig } from './config.js';
import type { SourceMetrics } from './source-metrics.js';
import type { TagStatusBoard } from './tag-status-board.js';
import type { Mapped } from './value-mapping.js';

/**
 * Where mapped values go: one batch per publish response (or per poll), so the bus sees one call per batch and
 * the counters are bumped once per batch. Also keeps the tag board up to date: a configuration status or an
 * unsupported value degrades the tag (logged once), a usable value clears it.
 */
export class SampleSink {
  #batch: TagSample[] = [];
  #bad = 0;
  #uncertain = 0;
  #overflow = 0;
  readonly #markers: ConnectionMarkers;

  constructor(
    private readonly tags: readonly OpcuaTagConfig[],
    private readonly source: string,
    private readonly board: TagStatusBoard,
    private readonly metrics: SourceMetrics,
    private readonly bus: TagBus,
    private readonly log: Logger,
  ) {
    this.#markers = new ConnectionMarkers(bus, source);
  }

  /**
   * The session is gone (or could not be opened): every tag is marked BadNoCommunication now, so a model's window
   * does not hold the last values across the outage.
   */
  connectionLost(): void {
    this.flush();
    this.#markers.lost(this.tags.map((t) => t.tag));
  }

  /**
   * Takes one mapped value of tag `index`. `statusKind` says how a configuration status degrades the tag: `status`
   * for a monitored item (re-created by the retry), `read` for a polled tag (the next poll retries).
   */
  accept(index: number, mapped: Mapped, now: number, statusKind: 'status' | 'read'): void {
    if (mapped.kind === 'sample') {
      const cfg = this.tags[index]!;
      const sample: TagSample = {
        tag: cfg.tag, value: mapped.value, ts: mapped.ts, quality: mapped.quality,
        statusCode: mapped.statusCode, statusName: mapped.statusName, source: this.source,
      };
      this.#markers.adjust(sample);
      this.#batch.push(sample);
      this.board.touch(index, now);
      if (mapped.quality === 'bad') this.#bad++;
      else if (mapped.quality === 'uncertain') this.#uncertain++;
      if (mapped.overflow) this.#overflow++;
      if (this.board.degradedCount > 0 && this.board.isDegraded(index) && this.board.recover(index)) {
        this.log.info({ tag: cfg.tag, nodeId: cfg.nodeId }, 'tag recovered: values arrive again');
      }
      return;
    }
    if (mapped.kind === 'empty') return;
    const reason = mapped.kind === 'config-error' ? `the server reports ${mapped.statusName}` : mapped.reason;
    this.degrade(index, reason, mapped.kind === 'config-error' ? statusKind : 'value');
  }

  /** Marks a tag degraded and logs it the first time this reason appears. */
  degrade(index: number, reason: string, kind: Parameters<TagStatusBoard['degrade']>[2]): void {
    if (this.board.degrade(index, reason, kind)) {
      const cfg = this.tags[index]!;
      this.log.warn({ tag: cfg.tag, nodeId: cfg.nodeId, reason }, `tag degraded: ${reason}`);
    }
  }

  /** Publishes what was accepted since the last flush. */
  flush(): void {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.metrics.notifications(batch.length);
    if (this.#bad > 0) this.metrics.badQuality('bad', this.#bad);
    if (this.#uncertain > 0) this.metrics.badQuality('uncertain', this.#uncertain);
    if (this.#overflow > 0) this.metrics.overflow(this.#overflow);
    this.#bad = this.#uncertain = this.#overflow = 0;
    this.bus.publish(batch);
  }
}
