import type { Registry } from 'prom-client';
import { counter, gauge } from '../../core/metrics.js';
import type { ConnectFailureKind } from './session-opener.js';
import { summarizeAges, type TagStatusBoard } from './tag-status-board.js';

export type SessionState = 'disconnected' | 'connecting' | 'connected';
const SESSION_STATES: readonly SessionState[] = ['disconnected', 'connecting', 'connected'];
const CONNECT_FAILURE_KINDS: readonly ConnectFailureKind[] = ['certificate', 'server-refused-client', 'auth', 'security', 'network', 'timeout', 'other'];

/**
 * The metrics of one OPC UA source, labelled `server`. Created through the get-or-create helpers because the
 * registry outlives the component (config reload); `remove()` drops this server's series on stop.
 *
 * Per-tag ages would be 10,000 series for a big PLC, so the age is summarised per server (max, p50, p99) and
 * exported per tag only when `perTagAgeMetric` is on.
 */
export class SourceMetrics {
  readonly #labels: { server: string };
  readonly #notifications;
  readonly #badQuality;
  readonly #overflows;
  readonly #reconnects;
  readonly #connectFailures;
  readonly #sessionState;
  readonly #degradedTags;
  readonly #monitoredItems;
  readonly #ageSummary;
  readonly #tagAge;
  readonly #perTagAge: boolean;
  readonly #tagNames: readonly string[];

  constructor(registry: Registry, server: string, tagNames: readonly string[], perTagAge: boolean) {
    this.#labels = { server };
    this.#tagNames = tagNames;
    this.#perTagAge = perTagAge;
    this.#notifications = counter(registry, {
      name: 'lineguard_opcua_notifications_total',
      help: 'Values received from the server (data-change notifications and changed polled values) and published as tag samples.',
      labelNames: ['server'] as const,
    });
    this.#badQuality = counter(registry, {
      name: 'lineguard_opcua_bad_quality_samples_total',
      help: 'Samples published with a bad or uncertain quality (StatusCode severity), by quality.',
      labelNames: ['server', 'quality'] as const,
    });
    this.#overflows = counter(registry, {
      name: 'lineguard_opcua_queue_overflows_total',
      help: 'Values carrying the Overflow bit: the server\'s monitored-item queue dropped older values (raise queueSize).',
      labelNames: ['server'] as const,
    });
    this.#reconnects = counter(registry, {
      name: 'lineguard_opcua_reconnects_total',
      help: 'Sessions re-established after a lost connection, a silent session or a dead subscription.',
      labelNames: ['server'] as const,
    });
    this.#connectFailures = counter(registry, {
      name: 'lineguard_opcua_connect_failures_total',
      help: 'Failed connect attempts, by kind (network, certificate, auth, security, timeout, other).',
      labelNames: ['server', 'kind'] as const,
    });
    this.#sessionState = gauge(registry, {
      name: 'lineguard_opcua_session_state',
      help: '1 for the session state the source is in (disconnected, connecting, connected), 0 for the others.',
      labelNames: ['server', 'state'] as const,
    });
    this.#degradedTags = gauge(registry, {
      name: 'lineguard_opcua_degraded_tags',
      help: 'Tags that cannot be read as configured (unknown node id or namespace, refused deadband, unsupported value); see /healthz.',
      labelNames: ['server'] as const,
    });
    this.#monitoredItems = gauge(registry, {
      name: 'lineguard_opcua_monitored_items',
      help: 'Monitored items active in the current subscription (polled tags not included).',
      labelNames: ['server'] as const,
    });
    this.#ageSummary = gauge(registry, {
      name: 'lineguard_opcua_tag_update_age_summary_seconds',
      help: 'Seconds since the last value of the healthy tags of a server: max, p50 and p99 over its tags.',
      labelNames: ['server', 'stat'] as const,
    });
    this.#tagAge = gauge(registry, {
      name: 'lineguard_opcua_tag_update_age_seconds',
      help: 'Seconds since the last value of one tag (only for servers with perTagAgeMetric: true).',
      labelNames: ['server', 'tag'] as const,
    });
    this.setSessionState('disconnected');
    this.#degradedTags.set(this.#labels, 0);
    this.#monitoredItems.set(this.#labels, 0);
  }

  notifications(n: number): void {
    this.#notifications.inc(this.#labels, n);
  }

  badQuality(quality: 'bad' | 'uncertain', n: number): void {
    this.#badQuality.inc({ ...this.#labels, quality }, n);
  }

  overflow(n: number): void {
    this.#overflows.inc(this.#labels, n);
  }

  reconnected(): void {
    this.#reconnects.inc(this.#labels);
  }

  connectFailed(kind: ConnectFailureKind): void {
    this.#connectFailures.inc({ ...this.#labels, kind });
  }

  setSessionState(state: SessionState): void {
    for (const s of SESSION_STATES) this.#sessionState.set({ ...this.#labels, state: s }, s === state ? 1 : 0);
  }

  setMonitoredItems(n: number): void {
    this.#monitoredItems.set(this.#labels, n);
  }

  /** Refreshes the gauges derived from the tag board (called every few seconds, not per notification). */
  refreshTags(board: TagStatusBoard, now: number): void {
    this.#degradedTags.set(this.#labels, board.degradedCount);
    const summary = summarizeAges(board.ages(now));
    this.#ageSummary.set({ ...this.#labels, stat: 'max' }, summary.max);
    this.#ageSummary.set({ ...this.#labels, stat: 'p50' }, summary.p50);
    this.#ageSummary.set({ ...this.#labels, stat: 'p99' }, summary.p99);
    if (!this.#perTagAge) return;
    for (let i = 0; i < this.#tagNames.length; i++) {
      const tag = this.#tagNames[i]!;
      if (board.isDegraded(i)) {
        this.#tagAge.remove({ ...this.#labels, tag });
        continue;
      }
      this.#tagAge.set({ ...this.#labels, tag }, board.ageOf(i, now));
    }
  }

  /** Drops every series of this server (on stop). */
  remove(): void {
    const l = this.#labels;
    for (const metric of [this.#notifications, this.#overflows, this.#reconnects, this.#degradedTags, this.#monitoredItems]) metric.remove(l);
    for (const quality of ['bad', 'uncertain']) this.#badQuality.remove({ ...l, quality });
    for (const kind of CONNECT_FAILURE_KINDS) this.#connectFailures.remove({ ...l, kind });
    for (const state of SESSION_STATES) this.#sessionState.remove({ ...l, state });
    for (const stat of ['max', 'p50', 'p99']) this.#ageSummary.remove({ ...l, stat });
    if (this.#perTagAge) for (const tag of this.#tagNames) this.#tagAge.remove({ ...l, tag });
  }
}
