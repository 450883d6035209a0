import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SourceClockView } from './source-clock.js';
import type { TagBus } from './tag-bus.js';

export type ComponentState = 'starting' | 'up' | 'degraded' | 'down' | 'stopped';

/** What `/healthz` shows for one component. `reason` says why it is not `up`, in words an engineer can act on. */
export interface ComponentHealth {
  state: ComponentState;
  reason?: string;
  /** Component-specific detail (session state, degraded tags, provider used...). Never secrets. */
  details?: Record<string, unknown>;
}

/**
 * The one lifecycle every part of the daemon follows: construct (assign only) → start(signal) → stop().
 *
 * - `start` resolves when the component is running or has given up per its startup policy; a connector that
 *   cannot reach its server still resolves and keeps retrying in the background, reporting `degraded`/`down`.
 * - `stop` is idempotent and bounded in time; after it, the component holds no timers, sockets or listeners.
 * - A component never throws out of its own event handlers: one broken component does not stop the others.
 */
export interface Component {
  /** `kind/instance`, e.g. `opcua/plc1`, `buffer`, `model/press-fault`. */
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  health(): ComponentHealth;
}

/** What the daemon hands every component at construction. */
export interface ComponentContext {
  /** A pino child logger already bound to `{component, instance}`. */
  log: Logger;
  /** The registry `/metrics` serves; metric names start with `lineguard_`. */
  metrics: Registry;
  bus: TagBus;
  /** Gateway id from the config. */
  gatewayId: string;
  /** Absolute path of the state directory (SQLite, PKI, engine caches). */
  stateDir: string;
  /** Every source's clock (offsets, steps, current source time); absent in tests that do not need it. */
  clocks?: SourceClockView;
}
