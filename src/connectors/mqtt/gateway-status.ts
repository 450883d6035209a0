/**
 * The retained gateway status on `alerts.statusTopic`. JSON rather than a bare word so a dashboard can show
 * which gateway and since when without parsing the topic:
 *
 *   {"schema":1,"gateway":"gw-1","state":"online","ts":1714564800000}
 *   {"schema":1,"gateway":"gw-1","state":"offline","reason":"stopped","ts":1714568400000}
 *   {"schema":1,"gateway":"gw-1","state":"offline","reason":"connection-lost","ts":1714564800000}
 *
 * `ts` is when the message was made. The last will (`connection-lost`) is handed to the broker at CONNECT, so
 * its `ts` is the time that connection was opened, i.e. the gateway was last seen online after it.
 */
export interface GatewayStatus {
  schema: 1;
  gateway: string;
  state: 'online' | 'offline';
  reason?: 'stopped' | 'connection-lost';
  ts: number;
}

export function onlineStatus(gateway: string, ts: number): string {
  const status: GatewayStatus = { schema: 1, gateway, state: 'online', ts };
  return JSON.stringify(status);
}

export function offlineStatus(gateway: string, reason: NonNullable<GatewayStatus['reason']>, ts: number): string {
  const status: GatewayStatus = { schema: 1, gateway, state: 'offline', reason, ts };
  return JSON.stringify(status);
}
