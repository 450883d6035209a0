import { format } from 'node:util';
import type { Logger } from 'pino';

/** The node-opcua namespace, as a type only: importing this file does not load node-opcua. */
export type Opcua = typeof import('node-opcua');

let loading: Promise<Opcua> | undefined;

/**
 * Loads node-opcua on first use. Loading it takes seconds (and an RSA self-test), so `lineguard --help`,
 * `check-config` and `pki` never pay for it; only a running OPC UA source or `browse` does.
 */
export function loadOpcua(): Promise<Opcua> {
  loading ??= import('node-opcua');
  return loading;
}

let routed = false;

/**
 * node-opcua prints its warnings and errors to the console as multi-line text, which would break the JSON log
 * lines journald receives. Route them through pino instead (process-wide; the first caller's logger wins). Its
 * warnings are mostly internal detail (certificate dumps, retries we already report) so they go to debug; its
 * errors to warn. The lines carry the bindings of the logger of the first caller (node-opcua's loggers are global).
 */
export function routeOpcuaLogs(opcua: Opcua, log: Logger): void {
  if (routed) return;
  routed = true;
  const libLog = log.child({ lib: 'node-opcua' });
  // node-opcua passes a context object (file, line) before the message parts.
  const text = (args: unknown[]): string => {
    const parts = args.length > 1 && typeof args[0] === 'object' && args[0] !== null && !(args[0] instanceof Error) ? args.slice(1) : args;
    return format(...parts).slice(0, 2000);
  };
  opcua.setWarningLogger((...args: unknown[]) => libLog.debug(text(args)));
  opcua.setErrorLogger((...args: unknown[]) => libLog.warn(text(args)));
}
