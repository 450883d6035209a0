import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { AlertOutbox, OutboxEntry } from '../../core/alert.js';
import type { Component, ComponentContext, ComponentHealth } from '../../core/component.js';
import { AlertDrain, type PublishFn } from './alert-drain.js';
import { alertTopic, statusTopic } from './alert-topic.js';
import { BrokerConnection } from './broker-connection.js';
import { ALERT_SINK_DEFAULTS, type MqttAlertSinkConfig, type MqttBrokerConfig } from './config.js';
import { clientIdFor } from './connect-options.js';
import { offlineStatus, onlineStatus } from './gateway-status.js';
import { sinkMetrics, type SinkMetrics } from './mqtt-metrics.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { untilSettledOrAborted } from './until-aborted.js';

/** On stop: how long publishes in flight may take to be acknowledged (unacknowledged ones are simply sent again). */
const STOP_DRAIN_MS = 1_500;
/** On stop: how long the retained "offline" status may take to be acknowledged. */
const STOP_STATUS_MS = 1_000;

/** What the sink knows about delivery at one moment: the input of both health() and undeliverable(). */
interface DeliveryView {
  connected: boolean;
  /** Alerts the broker has not acknowledged yet (in flight or waiting), and the age of the oldest, ms. */
  unacked: number;
  unackedAgeMs: number;
  /** How long the connection has been down (0 while connected), ms. */
  disconnectedForMs: number;
  /** The outbox could not be read. */
  outboxError?: string;
}

/**
 * Alerts out: drains the durable outbox to the broker with QoS 1 (see AlertDrain for the ordering and
 * at-least-once rules) and keeps the gateway's retained status on `statusTopic`: `online` on connect, `offline`
 * on a clean stop, and `offline` as the last will when the connection is lost (a crash, a power cut, SIGKILL).
 *
 * Health tells the truth about delivery, not about the socket: a broker that is frozen (SIGSTOP, a hung VM, an
 * overloaded bridge) keeps the TCP connection open until the keep-alive gives up (1.5 x keepaliveS) while it
 * acknowledges nothing. So the sink is `degraded` as soon as the oldest alert without a PUBACK is older than
 * `maxUnackedAgeMs`, and `down` when it is older than `maxUndeliveredMs` or the connection is gone; `undeliverable()`
 * tells the daemon when alerts have not been deliverable for longer than `maxUndeliveredMs` (the gateway is then down).
 * Ages of waiting alerts are from their `enqueuedAt` (wall clock: they may come from before a restart); how long the
 * connection has been down is on the monotonic clock.
 *
 * Payload: the AlertEvent JSON (docs/alert-payload.md); subscribers de-duplicate on `eventId`.
 */
export class MqttAlertSink implements Component {
  readonly name = 'mqtt-sink';
  #connection: BrokerConnection | undefined;
  #drain: AlertDrain | undefined;
  #metrics: SinkMetrics | undefined;
  #unsubscribe: (() => void) | undefined;
  #pumpScheduled: NodeJS.Immediate | undefined;
  #errorLog: RateLimitedLog;
  #started = false;
  #stopped = false;
  #published = 0;
  #lastDeliveredAt = 0;
  /** performance.now() when the connection was lost (or the sink started); undefined while connected. */
  #disconnectedSince: number | undefined;
  readonly #statusTopic: string;
  readonly #maxUnackedAgeMs: number;
  readonly #maxUndeliveredMs: number;

  constructor(
    private readonly cfg: MqttAlertSinkConfig,
    private readonly broker: MqttBrokerConfig,
    private readonly ctx: ComponentContext,
    private readonly outbox: AlertOutbox,
  ) {
    this.#errorLog = new RateLimitedLog(ctx.log, 10_000);
    this.#statusTopic = statusTopic(cfg.statusTopic ?? 'lineguard/{gateway}/status', ctx.gatewayId);
    this.#maxUnackedAgeMs = cfg.maxUnackedAgeMs ?? ALERT_SINK_DEFAULTS.maxUnackedAgeMs;
    this.#maxUndeliveredMs = cfg.maxUndeliveredMs ?? ALERT_SINK_DEFAULTS.maxUndeliveredMs;
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#disconnectedSince = performance.now();
    const metrics = sinkMetrics(this.ctx.metrics);
    this.#metrics = metrics;
    const drain = new AlertDrain(this.outbox, {
      maxInFlight: this.cfg.maxInFlight ?? 100,
      onDelivered: (_seq, enqueuedAt) => {
        const now = Date.now();
        this.#published++;
        this.#lastDeliveredAt = now;
        metrics.published.inc();
        metrics.deliverySeconds.observe(Math.max(0, now - enqueuedAt) / 1000);
        metrics.inFlight.set(drain.pending);
      },
      onPublishError: (err, seq, retryInMs) => {
        metrics.publishErrors.inc();
        this.#errorLog.warn('publish', { err, seq, retryInMs }, 'the broker did not accept an alert; the backlog is sent again from it');
      },
      onOutboxError: (err) => {
        this.#errorLog.warn('outbox', { err }, 'cannot read or acknowledge alerts in the outbox; retrying');
      },
      retry: { initialMs: this.broker.reconnect?.initialDelayMs ?? 1000, maxMs: this.broker.reconnect?.maxDelayMs ?? 30_000 },
    });
    this.#drain = drain;
    this.#unsubscribe = this.outbox.onEnqueue(() => this.#schedulePump());

    this.#connection = new BrokerConnection({
      broker: this.broker,
      clientId: clientIdFor(this.broker, this.ctx.gatewayId, 'alerts'),
      baseDir: this.ctx.stateDir,
      noDelay: true,
      log: this.ctx.log,
      metrics: metrics.connection,
      will: () => ({
        topic: this.#statusTopic,
        payload: Buffer.from(offlineStatus(this.ctx.gatewayId, 'connection-lost', Date.now())),
        qos: 1,
        retain: true,
      }),
      handlers: {
        onConnect: (client) => {
          client.publish(this.#statusTopic, onlineStatus(this.ctx.gatewayId, Date.now()), { qos: 1, retain: true }, (err) => {
            if (err) this.ctx.log.warn({ err, topic: this.#statusTopic }, 'cannot publish the online status');
          });
          this.#disconnectedSince = undefined;
          drain.attach(this.#publisher(client));
          metrics.inFlight.set(drain.pending);
          const depth = this.outbox.depth();
          if (depth > 0) this.ctx.log.info({ depth }, 'draining the alert backlog');
        },
        onDisconnect: () => {
          this.#disconnectedSince = performance.now();
          drain.detach();
          metrics.inFlight.set(0);
        },
      },
    });
    await untilSettledOrAborted(this.#connection.start(), signal);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#pumpScheduled) clearImmediate(this.#pumpScheduled);
    const drain = this.#drain;
    if (drain) {
      drain.close();
      await Promise.race([drain.idle(), delay(STOP_DRAIN_MS)]);
    }
    await this.#connection?.stop((client) => this.#publishOffline(client));
    drain?.detach();
    this.#metrics?.release();
  }

  health(): ComponentHealth {
    if (this.#stopped) return { state: 'stopped' };
    const connection = this.#connection;
    const drain = this.#drain;
    if (!connection || !drain) return { state: 'starting' };
    const view = this.#view();
    this.#metrics?.oldestUnackedAgeSeconds.set(view.unackedAgeMs / 1000);
    const details: Record<string, unknown> = {
      ...connection.details(),
      statusTopic: this.#statusTopic,
      waiting: safeDepth(this.outbox),
      unacknowledged: view.unacked,
      oldestUnackedAgeMs: Math.round(view.unackedAgeMs),
      maxUnackedAgeMs: this.#maxUnackedAgeMs,
      inFlight: drain.pending,
      published: this.#published,
      ...(this.#lastDeliveredAt ? { lastDeliveredAt: new Date(this.#lastDeliveredAt).toISOString() } : {}),
      ...(view.outboxError ? { outboxError: view.outboxError } : {}),
    };
    const waiting = view.unacked > 0 ? `; ${view.unacked} alert(s) wait in the outbox, the oldest for ${seconds(view.unackedAgeMs)}` : '';
    if (!view.connected) {
      const reason = `cannot reach MQTT broker "${this.broker.name}": ${connection.lastError ?? 'connecting'}${waiting}`;
      return { state: 'down', reason, details };
    }
    if (view.unackedAgeMs > this.#maxUnackedAgeMs) {
      const why = drain.lastError
        ? `the broker refuses them: ${drain.lastError} (check its ACL and limits)`
        : drain.pending > 0
          ? `${drain.pending} published and waiting for PUBACK: the connection is open but the broker does not answer`
          : 'none could be sent yet';
      const reason =
        `${view.unacked} alert(s) not acknowledged by MQTT broker "${this.broker.name}", the oldest for ${seconds(view.unackedAgeMs)} ` +
        `(bound ${seconds(this.#maxUnackedAgeMs)}): ${why}`;
      return { state: view.unackedAgeMs > this.#maxUndeliveredMs ? 'down' : 'degraded', reason, details };
    }
    if (drain.lastError) {
      return { state: 'degraded', reason: `the broker does not accept alerts: ${drain.lastError} (check its ACL and limits)`, details };
    }
    if (view.outboxError) return { state: 'degraded', reason: `cannot read the alert outbox: ${view.outboxError}`, details };
    return { state: 'up', details };
  }

  /**
   * Why alerts have not been deliverable for longer than `maxUndeliveredMs` — no broker connection for that long, or
   * the oldest unacknowledged alert older than that — or undefined while delivery works (or recovered within the bound).
   * An alert raised now would not reach anyone: the daemon reports the whole gateway down (HTTP 503).
   */
  undeliverable(): string | undefined {
    if (!this.#started || this.#stopped || !this.#drain) return undefined;
    const view = this.#view();
    const bound = this.#maxUndeliveredMs;
    if (view.disconnectedForMs > bound) {
      const last = this.#connection?.lastError;
      return `no connection to MQTT broker "${this.broker.name}" for ${seconds(view.disconnectedForMs)} (bound ${seconds(bound)})` +
        `${last ? `: ${last}` : ''}; ${view.unacked} alert(s) wait in the outbox`;
    }
    if (view.unackedAgeMs > bound) {
      return `MQTT broker "${this.broker.name}" has not acknowledged ${view.unacked} alert(s), the oldest for ` +
        `${seconds(view.unackedAgeMs)} (bound ${seconds(bound)})`;
    }
    return undefined;
  }

  #view(): DeliveryView {
    const connected = this.#connection?.state === 'connected';
    const since = this.#disconnectedSince;
    const view: DeliveryView = {
      connected,
      unacked: 0,
      unackedAgeMs: 0,
      disconnectedForMs: connected || since === undefined ? 0 : performance.now() - since,
    };
    try {
      const oldest = this.#drain?.oldestUnacked();
      if (oldest) {
        view.unacked = oldest.count;
        view.unackedAgeMs = Math.max(0, Date.now() - oldest.enqueuedAt);
      }
    } catch (err) {
      view.outboxError = (err as Error).message;
    }
    return view;
  }

  #publisher(client: MqttClient): PublishFn {
    const v5 = this.broker.protocolVersion === 5;
    const options: IClientPublishOptions = v5
      ? { qos: 1, retain: false, properties: { contentType: 'application/json', payloadFormatIndicator: true } }
      : { qos: 1, retain: false };
    return (entry: OutboxEntry, done) => {
      let payload: string;
      let topic: string;
      try {
        payload = JSON.stringify(entry.alert);
        topic = alertTopic(this.cfg.topic ?? 'lineguard/{gateway}/alerts/{model}', entry.alert, this.ctx.gatewayId);
      } catch (err) {
        done(err as Error);
        return;
      }
      client.publish(topic, payload, options, (err) => done(err ?? null));
      this.#metrics?.inFlight.set(this.#drain?.pending ?? 0);
    };
  }

  #publishOffline(client: MqttClient): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, STOP_STATUS_MS);
      client.publish(this.#statusTopic, offlineStatus(this.ctx.gatewayId, 'stopped', Date.now()), { qos: 1, retain: true }, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Coalesces the enqueue notifications of a burst into one pump, outside the producer's call stack. */
  #schedulePump(): void {
    if (this.#pumpScheduled || this.#stopped) return;
    this.#pumpScheduled = setImmediate(() => {
      this.#pumpScheduled = undefined;
      this.#drain?.pump();
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** `12.3 s`: a duration in a health reason. */
function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function safeDepth(outbox: AlertOutbox): number | string {
  try {
    return outbox.depth();
  } catch {
    return 'unknown';
  }
}
