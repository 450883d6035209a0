import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { counter, gauge, histogram } from '../../core/metrics.js';

/**
 * Metrics of the MQTT connectors. They are created once per registry (components are rebuilt on reload) and
 * labelled by instance; `release()` removes an instance's label values when it stops.
 */

/** The per-connection view handed to BrokerConnection. */
export interface ConnectionMetrics {
  connected: { set(v: number): void };
  connects: { inc(): void };
  connectionErrors: { inc(): void };
}

function connectionMetrics(registry: Registry, client: string): ConnectionMetrics & { release(): void } {
  const connected = gauge(registry, {
    name: 'lineguard_mqtt_connected', help: '1 while the MQTT connection is up.', labelNames: ['client'] as const,
  });
  const connects = counter(registry, {
    name: 'lineguard_mqtt_connects_total', help: 'Successful MQTT connections (CONNACK accepted).', labelNames: ['client'] as const,
  });
  const errors = counter(registry, {
    name: 'lineguard_mqtt_connection_errors_total', help: 'Failed MQTT connection attempts and lost connections.',
    labelNames: ['client'] as const,
  });
  connected.set({ client }, 0);
  return {
    connected: { set: (v) => connected.set({ client }, v) },
    connects: { inc: () => connects.inc({ client }) },
    connectionErrors: { inc: () => errors.inc({ client }) },
    release: () => {
      connected.remove({ client });
      connects.remove({ client });
      errors.remove({ client });
    },
  };
}

export interface SourceMetrics {
  connection: ConnectionMetrics;
  message(): void;
  samples(n: number): void;
  droppedMessage(reason: string): void;
  droppedValue(reason: string): void;
  sparkplugEvent(event: string): void;
  rebirthRequest(): void;
  release(): void;
}

export function sourceMetrics(registry: Registry, source: string): SourceMetrics {
  const connection = connectionMetrics(registry, `mqtt-source/${source}`);
  const messages = counter(registry, {
    name: 'lineguard_mqtt_messages_total', help: 'MQTT messages received by a source.', labelNames: ['source'] as const,
  });
  const samples = counter(registry, {
    name: 'lineguard_mqtt_samples_total', help: 'Tag samples a source published to the tag bus.', labelNames: ['source'] as const,
  });
  const droppedMessages = counter(registry, {
    name: 'lineguard_mqtt_dropped_messages_total', help: 'Whole MQTT messages dropped, by reason (malformed, too large...).',
    labelNames: ['source', 'reason'] as const,
  });
  const droppedValues = counter(registry, {
    name: 'lineguard_mqtt_dropped_values_total',
    help: 'Single values or metrics dropped from otherwise good messages, by reason (missing field, wrong type...).',
    labelNames: ['source', 'reason'] as const,
  });
  const sparkplugEvents = counter(registry, {
    name: 'lineguard_mqtt_sparkplug_events_total', help: 'Sparkplug B session events (births, deaths, sequence gaps).',
    labelNames: ['source', 'event'] as const,
  });
  const rebirthRequests = counter(registry, {
    name: 'lineguard_mqtt_sparkplug_rebirth_requests_total', help: 'NCMD Node Control/Rebirth requests sent to edge nodes.',
    labelNames: ['source'] as const,
  });
  // Label values this instance used, so release() can remove exactly those.
  const used = { droppedMessages: new Set<string>(), droppedValues: new Set<string>(), events: new Set<string>() };
  // Bound children: no label hashing on the per-message path.
  const messagesOfSource = messages.labels({ source });
  const samplesOfSource = samples.labels({ source });
  messagesOfSource.inc(0);
  samplesOfSource.inc(0);
  return {
    connection,
    message: () => messagesOfSource.inc(),
    samples: (n) => samplesOfSource.inc(n),
    droppedMessage: (reason) => {
      used.droppedMessages.add(reason);
      droppedMessages.inc({ source, reason });
    },
    droppedValue: (reason) => {
      used.droppedValues.add(reason);
      droppedValues.inc({ source, reason });
    },
    sparkplugEvent: (event) => {
      used.events.add(event);
      sparkplugEvents.inc({ source, event });
    },
    rebirthRequest: () => rebirthRequests.inc({ source }),
    release: () => {
      connection.release();
      for (const m of [messages, samples, rebirthRequests]) m.remove({ source });
      for (const reason of used.droppedMessages) droppedMessages.remove({ source, reason });
      for (const reason of used.droppedValues) droppedValues.remove({ source, reason });
      for (const event of used.events) sparkplugEvents.remove({ source, event });
    },
  };
}

export interface SinkMetrics {
  connection: ConnectionMetrics;
  published: Counter;
  publishErrors: Counter;
  inFlight: Gauge;
  /** Set at every health check (the HTTP server runs one before each scrape of /metrics), so it is never stale. */
  oldestUnackedAgeSeconds: Gauge;
  deliverySeconds: Histogram;
  release(): void;
}

export function sinkMetrics(registry: Registry): SinkMetrics {
  const connection = connectionMetrics(registry, 'mqtt-sink');
  const published = counter(registry, {
    name: 'lineguard_mqtt_alerts_published_total', help: 'Alerts the broker acknowledged (PUBACK) and that left the outbox.',
  });
  const publishErrors = counter(registry, {
    name: 'lineguard_mqtt_alert_publish_errors_total', help: 'Alert publishes the broker refused (MQTT 5 reason code) or that failed locally.',
  });
  const inFlight = gauge(registry, { name: 'lineguard_mqtt_alerts_in_flight', help: 'Alerts published and awaiting PUBACK.' });
  const oldestUnackedAgeSeconds = gauge(registry, {
    name: 'lineguard_alert_oldest_unacked_age_seconds',
    help:
      'Age of the oldest alert the broker has not acknowledged (PUBACK) yet, whether in flight or still waiting to be sent; ' +
      '0 when every alert is delivered. Rises while a broker is frozen even though lineguard_mqtt_connected stays 1.',
  });
  const deliverySeconds = histogram(registry, {
    name: 'lineguard_mqtt_alert_delivery_seconds',
    help: 'Time from an alert entering the outbox to its PUBACK.',
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60, 600, 3600],
  });
  inFlight.set(0);
  oldestUnackedAgeSeconds.set(0);
  return {
    connection, published, publishErrors, inFlight, oldestUnackedAgeSeconds, deliverySeconds,
    release: () => {
      connection.release();
      inFlight.set(0);
      oldestUnackedAgeSeconds.set(0);
    },
  };
}
