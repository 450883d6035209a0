import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import type { MqttBrokerConfig } from './config.js';

/**
 * The client id of one connection to a broker. Every connection (the alert sink, each source) needs its own:
 * a broker disconnects the older of two clients with the same id, and a persistent session is found by it.
 */
export function clientIdFor(broker: MqttBrokerConfig, gatewayId: string, role: string): string {
  const prefix = broker.clientId ?? `lineguard-${gatewayId}-${broker.name}`;
  return `${prefix}-${role}`;
}

/** The broker URL without any user info, safe for logs and /healthz. */
export function displayUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^/@]*@/i, '$1');
}

export interface ConnectOptionsInput {
  broker: MqttBrokerConfig;
  clientId: string;
  /** Relative TLS file paths are resolved against this directory (gateway.stateDir). */
  baseDir: string;
  will?: IClientOptions['will'];
}

/**
 * mqtt.js options for one connection attempt. TLS files are read on every attempt, so a renewed certificate is
 * picked up by the next reconnect without a restart. mqtt.js's own reconnect is off (`reconnectPeriod: 0`):
 * BrokerConnection owns reconnection, with backoff and jitter.
 */
export async function connectOptions(input: ConnectOptionsInput): Promise<IClientOptions> {
  const { broker } = input;
  const options: IClientOptions = {
    clientId: input.clientId,
    protocolVersion: broker.protocolVersion ?? 4,
    clean: broker.cleanSession ?? false,
    keepalive: broker.keepaliveS ?? 30,
    connectTimeout: broker.connectTimeoutMs ?? 10_000,
    reconnectPeriod: 0,
    // Never queue while offline: the sink has its outbox, and a source has nothing to send.
    queueQoSZero: false,
    resubscribe: false,
  };
  if (broker.username !== undefined) options.username = broker.username;
  if (broker.password !== undefined) options.password = broker.password;
  if (options.protocolVersion === 5 && !options.clean) {
    options.properties = { sessionExpiryInterval: broker.sessionExpiryS ?? 86400 };
  }
  if (input.will) options.will = input.will;
  const tls = broker.tls;
  if (tls) {
    const read = (file: string): Promise<Buffer> => readFile(isAbsolute(file) ? file : resolve(input.baseDir, file));
    if (tls.caFile) options.ca = await read(tls.caFile);
    if (tls.certFile) options.cert = await read(tls.certFile);
    if (tls.keyFile) options.key = await read(tls.keyFile);
    if (tls.keyPassphrase !== undefined) (options as { passphrase?: string }).passphrase = tls.keyPassphrase;
    if (tls.serverName) options.servername = tls.serverName;
    options.rejectUnauthorized = tls.rejectUnauthorized ?? true;
  }
  return options;
}
