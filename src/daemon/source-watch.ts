import type { AlertOutbox } from '../core/alert.js';
import type { Component, ComponentContext, ComponentHealth } from '../core/component.js';
import { monotonicMs } from '../core/source-clock.js';
import { buildAvailabilityEvent } from '../runtime/alert-builder.js';
import { AvailabilityAlert } from '../runtime/availability.js';
import type { Config } from './config/schema.js';

/** How often the sources' health is looked at. */
const CHECK_MS = 1_000;

type SourceUnavailableConfig = Config['gateway']['sourceUnavailable'];

/**
 * Raises `source_unavailable` for a source (OPC UA server, MQTT source) that stays down longer than
 * `gateway.sourceUnavailable.afterMs`, through the same durable outbox as every alert, and clears it when the source
 * is back. Silence from a PLC is not health: without this, a dead PLC only shows in /healthz, which nobody watches at
 * 3 a.m. The state of each alert commits with its event, so a restart neither raises it twice nor forgets its clear.
 */
export class SourceWatch implements Component {
  readonly name = 'source-watch';
  readonly #alerts = new Map<string, AvailabilityAlert>();
  /** Monotonic time of the first check that saw each source not working (from the start for one not up yet). */
  readonly #downSince = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly cfg: SourceUnavailableConfig,
    private readonly sources: readonly string[],
    private readonly healthOf: (source: string) => ComponentHealth | undefined,
    private readonly outbox: AlertOutbox,
    private readonly ctx: ComponentContext,
  ) {}

  async start(_signal: AbortSignal): Promise<void> {
    for (const source of this.sources) {
      this.#downSince.set(source, monotonicMs());
      this.#alerts.set(source, new AvailabilityAlert({
        key: `source/${source}`, afterMs: this.cfg.afterMs, enabled: this.cfg.enabled, outbox: this.outbox, log: this.ctx.log,
        build: (e) => buildAvailabilityEvent({
          gatewayId: this.ctx.gatewayId, kind: 'source_unavailable', severity: this.cfg.severity, source, ...e,
          reason: e.state === 'raised' ? `is down: ${e.reason}` : 'is back',
        }),
      }));
    }
    this.#timer = setInterval(() => this.check(), CHECK_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Looks at every source once (the timer does it every second; tests call it directly). */
  check(): void {
    if (this.#stopped) return;
    for (const [source, alert] of this.#alerts) {
      let health: ComponentHealth | undefined;
      try {
        health = this.healthOf(source);
      } catch (err) {
        health = { state: 'down', reason: `health check failed: ${(err as Error).message}` };
      }
      // 'starting' counts as not working: a PLC unreachable since start is as silent as one that went away.
      if (!health || health.state === 'up' || health.state === 'degraded') {
        this.#downSince.delete(source);
        alert.ok();
      } else if (health.state !== 'stopped') {
        // The outage counts from the first check that saw it, not from the last one that saw the source up (the
        // alert's own clock): a source may go down just after a check, and afterMs is the least time it has been
        // down when source_unavailable is raised — a check or so late, never up to a check early.
        const since = this.#downSince.get(source) ?? monotonicMs();
        this.#downSince.set(source, since);
        if (monotonicMs() - since >= this.cfg.afterMs) alert.failing(health.reason ?? health.state);
      }
    }
  }

  health(): ComponentHealth {
    if (this.#stopped) return { state: 'stopped' };
    const standing = [...this.#alerts].filter(([, a]) => a.active).map(([s]) => s);
    const refused = [...this.#alerts].filter(([, a]) => a.refused).map(([s]) => s);
    const details = { sources: this.sources.length, unavailable: standing };
    if (refused.length > 0) return { state: 'degraded', reason: `the outbox refuses the source_unavailable alert of ${refused.join(', ')}`, details };
    return { state: 'up', details };
  }
}
