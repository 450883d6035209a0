import type { ComponentHealth } from '../core/component.js';

/**
 * The gateway's health as a whole, from its components' (README "Observability"):
 *
 * - `down` (HTTP 503) only when the gateway cannot do its job: the buffer is down (nothing can be stored), alerts
 *   cannot be delivered beyond the sink's bound (`mqtt.alerts.maxUndeliveredMs`), or every configured model is down;
 * - `starting` (200) from the start until every component has left `starting` (sources connecting, models filling
 *   their first window), for at most the warm-up bound; a component still starting after it counts as degraded;
 * - `degraded` (200) when any component is not up — a bad tag, a source that is down, a model that skips;
 * - `up` (200) when every component is up.
 *
 * The warm-up is once per process: a component restarted by a reload later makes the gateway degraded while it
 * warms up, not `starting` again (that model really is not watching yet).
 */
export type GatewayState = 'starting' | 'up' | 'degraded' | 'down';

/** What a component is for, as far as the gateway's verdict goes. */
export type ComponentRole = 'buffer' | 'model' | 'sink' | 'source' | 'other';

export interface ComponentStatus {
  name: string;
  role: ComponentRole;
  health: ComponentHealth;
  /** Alert sink only: why alerts have not been deliverable for longer than its bound (MqttAlertSink.undeliverable()). */
  undeliverable?: string;
  /** How long ago this component was started, ms (a reload restarts some); default: when the gateway started. */
  startedMsAgo?: number;
}

export interface GatewayVerdict {
  status: GatewayState;
  /** Why the gateway is not up: what stops it doing its job first, then one line per component that is not up. */
  reasons: string[];
}

/** The role a component plays, from its name in the plan (`buffer`, `model/<name>`, `mqtt-sink`, `opcua/<name>`...). */
export function roleOf(name: string): ComponentRole {
  if (name === 'buffer') return 'buffer';
  if (name === 'mqtt-sink') return 'sink';
  if (name.startsWith('model/')) return 'model';
  if (name.startsWith('opcua/') || name.startsWith('mqtt-source/')) return 'source';
  return 'other';
}

const UNAVAILABLE: ReadonlySet<ComponentHealth['state']> = new Set(['down', 'stopped']);

/** What stops the gateway doing its job, in words; empty when it can. */
export function blockingReasons(components: readonly ComponentStatus[]): string[] {
  const reasons: string[] = [];
  for (const c of components) {
    if (c.role === 'buffer' && UNAVAILABLE.has(c.health.state)) {
      reasons.push(`the buffer is ${c.health.state}: samples and alerts cannot be stored`);
    }
    if (c.role === 'sink' && c.undeliverable) reasons.push(`alerts cannot be delivered: ${c.undeliverable}`);
  }
  const models = components.filter((c) => c.role === 'model');
  if (models.length > 0 && models.every((m) => UNAVAILABLE.has(m.health.state))) {
    reasons.push(models.length === 1 ? `the only model (${models[0]!.name}) is down: nothing is watched` : `all ${models.length} models are down: nothing is watched`);
  }
  return reasons;
}

/**
 * Tracks the warm-up and turns component health into the gateway's verdict. Time is monotonic (`now`, ms), so a
 * wall-clock step cannot end or extend the warm-up.
 */
export class GatewayHealth {
  readonly #graceMs: number;
  readonly #now: () => number;
  readonly #startedAt: number;
  #startFinished = false;
  #warmedUp = false;
  #warmUpMs: number | undefined;

  constructor(options: { warmUpGraceMs: number; now?: () => number }) {
    this.#graceMs = options.warmUpGraceMs;
    this.#now = options.now ?? (() => performance.now());
    this.#startedAt = this.#now();
  }

  /** Every component's start() has returned (or given up): from now on the warm-up ends once none says `starting`. */
  startFinished(): void {
    this.#startFinished = true;
  }

  /** True once the warm-up is over (every component left `starting`, or the bound passed). */
  get warmedUp(): boolean {
    return this.#warmedUp;
  }

  /** How long the warm-up took, ms (undefined while it lasts). */
  get warmUpMs(): number | undefined {
    return this.#warmUpMs;
  }

  assess(components: readonly ComponentStatus[]): GatewayVerdict {
    const elapsed = this.#now() - this.#startedAt;
    const anyStarting = components.some((c) => c.health.state === 'starting');
    if (!this.#warmedUp && this.#startFinished && (!anyStarting || elapsed >= this.#graceMs)) {
      this.#warmedUp = true;
      this.#warmUpMs = elapsed;
    }
    const blocking = blockingReasons(components);
    const lines = components.flatMap((c) => (c.health.state === 'up' ? [] : [this.#line(c, elapsed)]));
    const reasons = [...blocking, ...lines];
    if (blocking.length > 0) return { status: 'down', reasons };
    if (!this.#warmedUp) return { status: 'starting', reasons };
    return { status: lines.length > 0 ? 'degraded' : 'up', reasons };
  }

  #line(c: ComponentStatus, elapsedMs: number): string {
    const reason = c.health.reason ? `: ${c.health.reason}` : '';
    const age = c.startedMsAgo ?? elapsedMs;
    if (c.health.state === 'starting' && age >= this.#graceMs) {
      return `${c.name} is still starting after ${Math.round(age / 1000)} s${reason}`;
    }
    return `${c.name} is ${c.health.state}${reason}`;
  }
}
