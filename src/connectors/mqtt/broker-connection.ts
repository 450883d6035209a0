import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { Backoff } from '../../core/backoff.js';
import type { MqttBrokerConfig } from './config.js';
import { connectOptions, displayUrl } from './connect-options.js';
import type { ConnectionMetrics } from './mqtt-metrics.js';
import { monotonicMs } from '../../core/source-clock.js';

/** A connection that stayed up this long was healthy: the next failure starts the backoff from the beginning. */
const STABLE_AFTER_MS = 10_000;
/** How long `stop()` waits for a clean DISCONNECT before it closes the socket. */
const END_TIMEOUT_MS = 1_000;

export interface ConnectionHandlers {
  /** Called on every CONNACK with the live client; subscribe or start publishing here. Must not throw. */
  onConnect(client: MqttClient, connack: IConnackPacket): void;
  /** Called when a connected client's connection ends (before the retry is scheduled). Must not throw. */
  onDisconnect?(): void;
  onMessage?(topic: string, payload: Buffer, packet: IPublishPacket): void;
}

export interface BrokerConnectionOptions {
  broker: MqttBrokerConfig;
  clientId: string;
  /** Relative TLS file paths are resolved against it. */
  baseDir: string;
  log: Logger;
  metrics: ConnectionMetrics;
  handlers: ConnectionHandlers;
  /** A fresh last will per attempt (its payload may carry the time of the attempt). */
  will?: () => IClientOptions['will'];
  /**
   * Turn Nagle's algorithm off (mqtt.js leaves it on). For a publisher with QoS 1 publishes in flight (the alert
   * sink) small packets otherwise wait for the peer's delayed ACK: ~40 ms stalls while the window refills. A
   * subscriber gains nothing and pays more syscalls for its PUBACKs, so it is per connection.
   */
  noDelay?: boolean;
}

export type ConnectionState = 'connecting' | 'connected' | 'waiting' | 'stopped';

/**
 * One MQTT connection that reconnects by itself, with exponential backoff and full jitter (core/backoff.ts).
 *
 * Each attempt is a new mqtt.js client with mqtt.js's own reconnect off: its fixed-period retry would race with
 * ours, and a fresh client per attempt carries no half-finished state (in-flight callbacks, queued packets) from
 * the connection that died. Whoever owns the connection re-sends what it has not seen acknowledged (the sink
 * from its outbox). The keep-alive catches a connection that is open but silent.
 */
export class BrokerConnection {
  #client: MqttClient | undefined;
  /** Removes our listeners from `#client` (only ours: mqtt.js keeps its own on the same emitter). */
  #detach: (() => void) | undefined;
  #state: ConnectionState = 'waiting';
  /** Monotonic time of the connect (how long a session lasted); `#connectedWall` is what /healthz shows. */
  #connectedAt = 0;
  #connectedWall = 0;
  #lastError: string | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #backoff: Backoff;
  #firstAttempt: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly options: BrokerConnectionOptions) {
    const reconnect = options.broker.reconnect ?? { initialDelayMs: 1000, maxDelayMs: 30000 };
    this.#backoff = new Backoff({ initialMs: reconnect.initialDelayMs, maxMs: reconnect.maxDelayMs });
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#firstAttempt = { promise, resolve };
  }

  /** Starts connecting; resolves once the first attempt connected or failed (later attempts continue in the background). */
  start(): Promise<void> {
    void this.#attempt();
    return this.#firstAttempt.promise;
  }

  /** The connected client, or undefined while disconnected (never publish through a client that is not connected). */
  get client(): MqttClient | undefined {
    return this.#state === 'connected' ? this.#client : undefined;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Why the last attempt or connection failed, in the library's words (no secrets: options are not included). */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Details for /healthz. */
  details(): Record<string, unknown> {
    return {
      url: displayUrl(this.options.broker.url),
      clientId: this.options.clientId,
      connection: this.#state,
      ...(this.#state === 'connected' ? { connectedSince: new Date(this.#connectedWall).toISOString() } : {}),
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      failedAttempts: this.#backoff.attempts,
    };
  }

  /**
   * Closes the connection. `beforeEnd` runs first while still connected (publish a final status); it is given
   * the client and should bound its own wait. Idempotent.
   */
  async stop(beforeEnd?: (client: MqttClient) => Promise<void>): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#firstAttempt.resolve();
    const client = this.#client;
    const wasConnected = this.#state === 'connected';
    this.#state = 'stopped';
    this.options.metrics.connected.set(0);
    if (!client) return;
    if (wasConnected && beforeEnd) {
      try {
        await beforeEnd(client);
      } catch (err) {
        this.options.log.warn({ err }, 'final publish before disconnect failed');
      }
    }
    await new Promise<void>((resolve) => {
      if (!wasConnected) {
        // Still waiting for CONNACK: there is no session to end cleanly. mqtt.js's end(false) would call back at once
        // but leave the socket and its CONNACK timer running for up to connectTimeoutMs, holding the process open.
        client.end(true, () => resolve());
        return;
      }
      const timer = setTimeout(() => {
        client.end(true, () => resolve());
      }, END_TIMEOUT_MS);
      client.end(false, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.#detach?.();
    this.#client = undefined;
  }

  async #attempt(): Promise<void> {
    if (this.#stopped) return;
    this.#state = 'connecting';
    let options: IClientOptions;
    try {
      options = await connectOptions({
        broker: this.options.broker,
        clientId: this.options.clientId,
        baseDir: this.options.baseDir,
        ...(this.options.will ? { will: this.options.will() } : {}),
      });
    } catch (err) {
      // A missing or unreadable certificate file: retrying with backoff lets an operator fix it without a restart.
      this.#failed(`cannot read TLS files: ${(err as Error).message}`);
      return;
    }
    if (this.#stopped) return;
    let client: MqttClient;
    try {
      client = mqtt.connect(this.options.broker.url, options);
    } catch (err) {
      // mqtt.js throws synchronously on a URL it cannot use (a port above 65535, an unparsable host): report it
      // like any failed attempt instead of letting it escape as an unhandled rejection.
      this.#failed(`cannot connect to ${displayUrl(this.options.broker.url)}: ${describeError(err as Error)}`);
      return;
    }
    this.#client = client;
    let connected = false;
    const onConnect = (connack: IConnackPacket): void => {
      if (this.#client !== client || this.#stopped) return;
      connected = true;
      if (this.options.noDelay) (client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.#state = 'connected';
      this.#connectedAt = monotonicMs();
      this.#connectedWall = Date.now();
      this.#lastError = undefined;
      this.options.metrics.connected.set(1);
      this.options.metrics.connects.inc();
      this.options.log.info(
        { url: displayUrl(this.options.broker.url), clientId: this.options.clientId, sessionPresent: connack.sessionPresent },
        'connected to MQTT broker',
      );
      this.#firstAttempt.resolve();
      try {
        this.options.handlers.onConnect(client, connack);
      } catch (err) {
        this.options.log.error({ err }, 'connect handler failed');
      }
    };
    const onMessage = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
      if (this.#client !== client) return;
      try {
        this.options.handlers.onMessage?.(topic, payload, packet);
      } catch (err) {
        this.options.log.error({ err, topic }, 'message handler failed');
      }
    };
    const onError = (err: Error): void => {
      if (this.#client !== client) return;
      this.#lastError = describeError(err);
    };
    const onClose = (): void => {
      if (this.#client !== client || this.#stopped) return;
      this.#client = undefined;
      detach();
      client.end(true);
      if (connected) {
        this.options.metrics.connected.set(0);
        const lasted = monotonicMs() - this.#connectedAt;
        if (lasted >= STABLE_AFTER_MS) this.#backoff.reset();
        this.options.log.warn(
          { url: displayUrl(this.options.broker.url), lastedMs: lasted, reason: this.#lastError },
          'connection to MQTT broker lost',
        );
        try {
          this.options.handlers.onDisconnect?.();
        } catch (err) {
          this.options.log.error({ err }, 'disconnect handler failed');
        }
      }
      this.#failed(this.#lastError ?? (connected ? 'connection closed' : 'connection refused or closed before CONNACK'));
    };
    // removeAllListeners() would also take mqtt.js's own 'close' listener, the one that clears its CONNACK timer: a
    // client stopped while connecting would then keep the process alive until connectTimeoutMs.
    const detach = (): void => {
      client.off('connect', onConnect);
      client.off('message', onMessage);
      client.off('error', onError);
      client.off('close', onClose);
      // mqtt.js emits errors after end() in some paths; an 'error' event without a listener would throw.
      client.on('error', () => {});
    };
    this.#detach = detach;
    client.on('connect', onConnect);
    client.on('message', onMessage);
    client.on('error', onError);
    client.on('close', onClose);
  }

  #failed(reason: string): void {
    this.#lastError = reason;
    this.#state = 'waiting';
    this.options.metrics.connectionErrors.inc();
    this.#firstAttempt.resolve();
    if (this.#stopped) return;
    const delay = this.#backoff.next();
    if (this.#backoff.attempts <= 1 || this.#backoff.attempts % 10 === 0) {
      this.options.log.warn(
        { url: displayUrl(this.options.broker.url), reason, retryInMs: delay, failedAttempts: this.#backoff.attempts },
        'cannot reach MQTT broker, retrying',
      );
    }
    this.#retryTimer = setTimeout(() => void this.#attempt(), delay);
  }
}

/** An error in words, with the MQTT reason code or errno when there is one. */
function describeError(err: Error & { code?: unknown }): string {
  const code = err.code !== undefined ? ` (${String(err.code)})` : '';
  return `${err.message.replace(/\s+/g, ' ').trim()}${code}`;
}
