import type { IClientPublishOptions, MqttClient } from 'mqtt';
import type { AlertOutbox, OutboxEntry } from '../../core/alert.js';
import type { Component, ComponentContext, ComponentHealth } from '../../core/component.js';
import { AlertDrain, type PublishFn } from './alert-drain.js';
import { alertTopic, statusTopic } from './alert-topic.js';
import { BrokerConnection } from './broker-connection.js';
import type { MqttAlertSinkConfig, MqttBrokerConfig } from './config.js';
import { clientIdFor } from './connect-options.js';
import { offlineStatus, onlineStatus } from './gateway-status.js';
import { sinkMetrics, type SinkMetrics } from './mqtt-metrics.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { untilSettledOrAborted } from './until-aborted.js';

/** On stop: how long publishes in flight may take to be acknowledged (unacknowledged ones are simply sent again). */
const STOP_DRAIN_MS = 1_500;
/** On stop: how long the retained "offline" status may take to be acknowledged. */
const STOP_STATUS_MS = 1_000;

/**
 * Alerts out: drains the durable outbox to the broker with QoS 1 (see AlertDrain for the ordering and
 * at-least-once rules) and keeps the gateway's retained status on `statusTopic`: `online` on connect, `offline`
 * on a clean stop, and `offline` as the last will when the connection is lost (a crash, a power cut, SIGKILL).
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
  readonly #statusTopic: string;

  constructor(
    private readonly cfg: MqttAlertSinkConfig,
    private readonly broker: MqttBrokerConfig,
    private readonly ctx: ComponentContext,
    private readonly outbox: AlertOutbox,
  ) {
    this.#errorLog = new RateLimitedLog(ctx.log, 10_000);
    this.#statusTopic = statusTopic(cfg.statusTopic ?? 'lineguard/{gateway}/status', ctx.gatewayId);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
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
          drain.attach(this.#publisher(client));
          metrics.inFlight.set(drain.pending);
          const depth = this.outbox.depth();
          if (depth > 0) this.ctx.log.info({ depth }, 'draining the alert backlog');
        },
        onDisconnect: () => {
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
    const depth = safeDepth(this.outbox);
    const details: Record<string, unknown> = {
      ...connection.details(),
      statusTopic: this.#statusTopic,
      waiting: depth,
      inFlight: drain.pending,
      published: this.#published,
      ...(this.#lastDeliveredAt ? { lastDeliveredAt: new Date(this.#lastDeliveredAt).toISOString() } : {}),
    };
    if (connection.state !== 'connected') {
      const reason = `cannot reach MQTT broker "${this.broker.name}": ${connection.lastError ?? 'connecting'}; ${depth} alert(s) wait in the outbox`;
      return { state: 'down', reason, details };
    }
    if (drain.lastError) {
      return { state: 'degraded', reason: `the broker does not accept alerts: ${drain.lastError} (check its ACL and limits)`, details };
    }
    return { state: 'up', details };
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

function safeDepth(outbox: AlertOutbox): number | string {
  try {
    return outbox.depth();
  } catch {
    return 'unknown';
  }
}
