import type { IConnackPacket, ISubscriptionMap, MqttClient } from 'mqtt';
import sparkplug from 'sparkplug-payload';
import type { Component, ComponentContext, ComponentHealth } from '../../core/component.js';
import { ConnectionMarkers } from '../../core/connection-markers.js';
import { BrokerConnection } from './broker-connection.js';
import type { MqttBrokerConfig, MqttSourceConfig } from './config.js';
import { clientIdFor } from './connect-options.js';
import type { TagSample } from '../../core/tag-sample.js';
import type { IngestProblem } from './ingest-problem.js';
import { JsonDecoder, preview, type DecodeResult } from './json-decoder.js';
import { sourceMetrics, type SourceMetrics } from './mqtt-metrics.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { SparkplugDecoder, type SparkplugResult } from './sparkplug-decoder.js';
import { TagAdmission } from './tag-admission.js';
import { nodeCommandTopic } from './sparkplug-topic.js';
import { compileTopicFilter, matchingFilter } from './topic-filter.js';
import { untilSettledOrAborted } from './until-aborted.js';

const SPARKPLUG_DEFAULTS = { requestRebirth: true, reorderTimeoutMs: 2000, rebirthMinIntervalMs: 10_000 };
/** Malformed-payload log lines: at most one per reason per this interval. */
const PROBLEM_LOG_INTERVAL_MS = 10_000;

/**
 * Device data in: subscribes to the configured topics on one broker and turns each message into TagSamples on
 * the tag bus, from JSON (values by JSON pointer, tag names from topic levels) or Sparkplug B.
 *
 * A message that cannot be decoded is counted (`lineguard_mqtt_dropped_*_total{reason}`), logged at a limited
 * rate, and dropped; nothing a device sends can throw out of the message handler or stop ingestion.
 */
export class MqttSource implements Component {
  readonly name: string;
  #connection: BrokerConnection | undefined;
  #decode: ((topic: string, payload: Buffer, arrivalMs: number) => DecodeResult | SparkplugResult) | undefined;
  #sparkplug: SparkplugDecoder | undefined;
  #metrics: SourceMetrics | undefined;
  #problemLog: RateLimitedLog;
  #filters: Array<(topic: string) => boolean> = [];
  #refused: string[] = [];
  #subscribed = false;
  #started = false;
  #stopped = false;
  #reorderTimer: NodeJS.Timeout | undefined;
  readonly #lastRebirth = new Map<string, number>();
  readonly #counts = { messages: 0, samples: 0, droppedMessages: 0, droppedValues: 0, rebirthRequests: 0 };
  #lastMessageAt = 0;
  #markers: ConnectionMarkers | undefined;
  /** Tags this source delivers (bounded): marked BadNoCommunication when the broker connection drops. */
  readonly #tags = new TagAdmission();

  constructor(
    private readonly cfg: MqttSourceConfig,
    private readonly broker: MqttBrokerConfig,
    private readonly ctx: ComponentContext,
  ) {
    this.name = `mqtt-source/${cfg.name}`;
    this.#problemLog = new RateLimitedLog(ctx.log, PROBLEM_LOG_INTERVAL_MS);
  }

  async start(signal: AbortSignal): Promise<void> {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#metrics = sourceMetrics(this.ctx.metrics, this.cfg.name);
    this.#filters = this.cfg.topics.map((t) => compileTopicFilter(matchingFilter(t)));
    if (this.cfg.format === 'sparkplug') {
      const options = { ...SPARKPLUG_DEFAULTS, ...this.cfg.sparkplug };
      const decoder = new SparkplugDecoder({ source: this.name, tagPrefix: this.cfg.tagPrefix ?? '', reorderTimeoutMs: options.reorderTimeoutMs });
      this.#sparkplug = decoder;
      this.#decode = (topic, payload, arrival) => decoder.handle(topic, payload, arrival);
      if (options.reorderTimeoutMs > 0) {
        const period = Math.max(50, Math.min(1000, Math.floor(options.reorderTimeoutMs / 4)));
        this.#reorderTimer = setInterval(() => this.#expireReorder(), period);
        this.#reorderTimer.unref();
      }
    } else {
      const decoder = new JsonDecoder(this.cfg, this.name);
      this.#decode = (topic, payload, arrival) => decoder.decode(topic, payload, arrival);
    }
    this.#markers = new ConnectionMarkers(this.ctx.bus, this.name);
    const metrics = this.#metrics;
    this.#connection = new BrokerConnection({
      broker: this.broker,
      clientId: clientIdFor(this.broker, this.ctx.gatewayId, `source-${this.cfg.name}`),
      baseDir: this.ctx.stateDir,
      log: this.ctx.log,
      metrics: metrics.connection,
      handlers: {
        onConnect: (client, connack) => this.#subscribe(client, connack),
        onDisconnect: () => {
          this.#subscribed = false;
          // Values held from before are not current while the broker is out of reach.
          if (!this.#stopped) this.#markers?.lost(this.#tags.known);
        },
        onMessage: (topic, payload) => this.#onMessage(topic, payload),
      },
    });
    await untilSettledOrAborted(this.#connection.start(), signal);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#reorderTimer);
    await this.#connection?.stop();
    this.#metrics?.release();
  }

  health(): ComponentHealth {
    if (this.#stopped) return { state: 'stopped' };
    const connection = this.#connection;
    if (!connection) return { state: 'starting' };
    const details: Record<string, unknown> = {
      ...connection.details(),
      format: this.cfg.format,
      topics: this.cfg.topics,
      ...this.#counts,
      tags: this.#tags.known.size,
      refusedTagSamples: this.#tags.refused,
      ...(this.#lastMessageAt ? { lastMessageAt: new Date(this.#lastMessageAt).toISOString() } : {}),
    };
    if (this.#sparkplug) {
      const online = this.#sparkplug.online();
      details.sparkplugNodesOnline = online.length;
      details.sparkplugNodes = online.slice(0, 20);
    }
    if (connection.state !== 'connected') {
      return { state: 'down', reason: `cannot reach MQTT broker "${this.broker.name}": ${connection.lastError ?? 'connecting'}`, details };
    }
    if (this.#refused.length > 0) {
      return { state: 'degraded', reason: `the broker refused the subscription to ${this.#refused.join(', ')} (check its ACL)`, details };
    }
    if (!this.#subscribed) return { state: 'degraded', reason: 'subscribing', details };
    return { state: 'up', details };
  }

  #subscribe(client: MqttClient, _connack: IConnackPacket): void {
    // Subscribe on every connect, also when the broker kept our session: the configured topics may have changed
    // since that session was made. MQTT 5 can skip resending retained messages for subscriptions that exist
    // (retain handling 1); MQTT 3.1.1 brokers resend them.
    const map: ISubscriptionMap = {};
    for (const topic of this.cfg.topics) {
      map[topic] = this.broker.protocolVersion === 5 ? { qos: this.cfg.qos ?? 1, rh: 1 } : { qos: this.cfg.qos ?? 1 };
    }
    client.subscribe(map, (err, granted) => {
      if (this.#stopped) return;
      if (err) {
        this.ctx.log.error({ err, topics: this.cfg.topics }, 'subscribe failed');
        return;
      }
      this.#refused = (granted ?? []).filter((g) => g.qos >= 128).map((g) => g.topic);
      this.#subscribed = true;
      if (this.#refused.length > 0) this.ctx.log.error({ topics: this.#refused }, 'the broker refused subscriptions');
      else this.ctx.log.info({ topics: this.cfg.topics, qos: this.cfg.qos }, 'subscribed');
    });
  }

  #onMessage(topic: string, payload: Buffer): void {
    const metrics = this.#metrics;
    const decode = this.#decode;
    if (!metrics || !decode || this.#stopped) return;
    const now = Date.now();
    this.#counts.messages++;
    this.#lastMessageAt = now;
    metrics.message();
    try {
      const maxBytes = this.cfg.maxPayloadBytes ?? 262144;
      if (payload.length > maxBytes) {
        this.#problem(topic, payload, { reason: 'too_large', scope: 'message', detail: `payload of ${payload.length} bytes exceeds ${maxBytes}` });
        return;
      }
      if (!this.#filters.some((matches) => matches(topic))) {
        this.#problem(topic, payload, { reason: 'unsubscribed_topic', scope: 'message', detail: 'no configured topic filter matches' });
        return;
      }
      const result = decode(topic, payload, now);
      for (const problem of result.problems) this.#problem(topic, payload, problem);
      if ('stale' in result && result.stale && result.stale.length > 0) {
        this.#markers?.lost(result.stale);
        // A dead node's tags are marked; their room is free for the tags of the next birth.
        this.#tags.forget(result.stale);
      }
      const admitted = this.#admit(topic, payload, result.samples);
      if (admitted.length > 0) {
        for (const sample of admitted) this.#markers?.adjust(sample);
        this.ctx.bus.publish(admitted);
        this.#counts.samples += admitted.length;
        metrics.samples(admitted.length);
      }
      if ('events' in result) {
        for (const event of result.events) metrics.sparkplugEvent(event);
        if (result.rebirth) this.#rebirth(result.rebirth.group, result.rebirth.node, result.rebirth.reason);
      }
    } catch (err) {
      // A bug of ours, not the device's: keep ingesting, but say so loudly (rate-limited).
      this.#problemLog.warn('internal', { err, topic }, 'message handling failed');
    }
  }

  /** The samples whose tag is known or has room (TagAdmission); the others are counted and logged as problems. */
  #admit(topic: string, payload: Buffer, samples: TagSample[]): TagSample[] {
    let admitted: TagSample[] | undefined;
    samples.forEach((sample, i) => {
      const refused = this.#tags.admit(sample.tag);
      if (refused) {
        admitted ??= samples.slice(0, i);
        this.#problem(topic, payload, refused);
      } else admitted?.push(sample);
    });
    return admitted ?? samples;
  }

  #problem(topic: string, payload: Buffer, problem: IngestProblem): void {
    if (problem.scope === 'message') {
      this.#counts.droppedMessages++;
      this.#metrics?.droppedMessage(problem.reason);
    } else {
      this.#counts.droppedValues++;
      this.#metrics?.droppedValue(problem.reason);
    }
    const message = problem.scope === 'message' ? 'dropped an MQTT message' : 'dropped a value from an MQTT message';
    this.#problemLog.warn(problem.reason, { topic, reason: problem.reason, detail: problem.detail, payload: preview(payload) }, message);
  }

  #expireReorder(): void {
    try {
      for (const node of this.#sparkplug?.expireReorder(Date.now()) ?? []) {
        this.#rebirth(node.group, node.node, 'sequence numbers missing after the reorder timeout');
      }
    } catch (err) {
      this.ctx.log.error({ err }, 'sparkplug reorder check failed');
    }
  }

  /** Sends NCMD Node Control/Rebirth (Sparkplug: how a host resynchronizes an edge node), when allowed and not too often. */
  #rebirth(group: string, node: string, reason: string): void {
    const options = { ...SPARKPLUG_DEFAULTS, ...this.cfg.sparkplug };
    const key = `${group}/${node}`;
    if (!options.requestRebirth) {
      this.#problemLog.warn(`no-rebirth:${key}`, { node: key, reason }, 'lost sync with a Sparkplug edge node; its data is dropped until it rebirths (requestRebirth is off)');
      return;
    }
    const now = Date.now();
    const last = this.#lastRebirth.get(key);
    if (last !== undefined && now - last < options.rebirthMinIntervalMs) return;
    const client = this.#connection?.client;
    if (!client) return;
    this.#lastRebirth.set(key, now);
    const spB = sparkplug.get('spBv1.0')!;
    const payload = spB.encodePayload({
      timestamp: now,
      metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true, timestamp: now }],
    });
    // NCMD is published with QoS 0 and not retained (spec, NCMD message).
    client.publish(nodeCommandTopic(group, node), Buffer.from(payload), { qos: 0, retain: false }, (err) => {
      if (err) this.ctx.log.warn({ err, node: key }, 'rebirth request failed');
    });
    this.#counts.rebirthRequests++;
    this.#metrics?.rebirthRequest();
    this.ctx.log.info({ node: key, reason }, 'requested a rebirth from a Sparkplug edge node');
  }
}
