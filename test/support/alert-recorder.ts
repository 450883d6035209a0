import mqtt, { type MqttClient } from 'mqtt';
import type { AlertEvent } from '../../src/core/alert.js';

/** One alert as a subscriber received it. */
export interface ReceivedAlert {
  topic: string;
  alert: AlertEvent;
  /** Arrival order over the recorder's life (redeliveries included). */
  n: number;
  /** Wall-clock time of arrival, epoch ms. */
  at: number;
}

/**
 * A subscriber as a SCADA bridge would run one: a persistent session (clean: false, fixed client id) with a QoS 1
 * subscription, so the broker queues alerts while it is away. It records every alert it receives, duplicates
 * included; `unique()` de-duplicates on eventId as the payload contract tells subscribers to.
 */
export class AlertRecorder {
  readonly received: ReceivedAlert[] = [];
  #client: MqttClient | undefined;

  private constructor(
    readonly url: string,
    readonly clientId: string,
    readonly filter: string,
  ) {}

  /** Connects (the session and its subscription are created on the first connect) and resolves once subscribed. */
  static async start(url: string, clientId: string, filter: string): Promise<AlertRecorder> {
    const recorder = new AlertRecorder(url, clientId, filter);
    await recorder.connect();
    return recorder;
  }

  /** (Re)connects with the same client id: the broker delivers what it queued meanwhile. */
  async connect(): Promise<void> {
    if (this.#client) return;
    const client = mqtt.connect(this.url, { clientId: this.clientId, clean: false, protocolVersion: 4, reconnectPeriod: 200 });
    client.on('message', (topic, payload) => {
      this.received.push({ topic, alert: JSON.parse(payload.toString('utf8')) as AlertEvent, n: this.received.length, at: Date.now() });
    });
    this.#client = client;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`alert recorder: no CONNACK from ${this.url} within 10 s`)), 10_000);
      client.once('connect', () => {
        clearTimeout(timer);
        client.subscribe(this.filter, { qos: 1 }, (err) => (err ? reject(err) : resolve()));
      });
    });
  }

  /** Goes away without ending the session (the broker keeps queueing for it). */
  async disconnect(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    await client?.endAsync();
  }

  /** Each eventId once, in the order of its first arrival. */
  unique(): AlertEvent[] {
    const seen = new Set<string>();
    const out: AlertEvent[] = [];
    for (const { alert } of this.received) {
      if (seen.has(alert.eventId)) continue;
      seen.add(alert.eventId);
      out.push(alert);
    }
    return out;
  }

  /** Polls until `done()` holds; rejects after `timeoutMs` with `what` and what was received. */
  async waitFor(done: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) {
        const last = this.received.slice(-5).map((r) => `${r.alert.kind} ${r.alert.state} ${r.alert.alertId}`);
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.received.length} received, last: ${last.join('; ')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The first alert received from arrival index `from` on that matches; rejects after `timeoutMs`. */
  async next(match: (a: AlertEvent) => boolean, what: string, from = 0, timeoutMs = 15_000): Promise<ReceivedAlert> {
    let found: ReceivedAlert | undefined;
    await this.waitFor(() => (found = this.received.slice(from).find((r) => match(r.alert))) !== undefined, what, timeoutMs);
    return found!;
  }

  async close(): Promise<void> {
    await this.disconnect();
  }
}
