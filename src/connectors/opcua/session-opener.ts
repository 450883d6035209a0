import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ClientSession, OPCUACertificateManager, OPCUAClient, UserIdentityInfo } from 'node-opcua';
import type { OpcuaServerConfig, SecurityModeName, SecurityPolicyName } from './config.js';
import { createClientCertificateManager, disposeCertificateManager, type ServerCertificateVerdict, type TrustUnknown } from './certificate-manager.js';
import type { Opcua } from './opcua-module.js';
import { pkiLayout, readCertificateFile, type CertificateInfo } from './pki-store.js';

/** Everything needed to open one session; the OPC UA source and `lineguard browse` both build one. */
export interface SessionTarget {
  endpoint: string;
  mode: SecurityModeName;
  policy: SecurityPolicyName;
  auth: OpcuaServerConfig['auth'];
  /** What to do with an unknown server certificate. */
  trustUnknown: TrustUnknown;
  pkiDir: string;
  sessionTimeoutMs: number;
  requestTimeoutMs: number;
  /** Bound of the TCP connect and secure channel open; default 2 × requestTimeoutMs. */
  connectTimeoutMs?: number;
  /** Shown in the server's session list. */
  clientName: string;
}

export type ConnectFailureKind = 'certificate' | 'server-refused-client' | 'auth' | 'security' | 'network' | 'timeout' | 'other';

/** A failed connect, with a reason an engineer can act on. Never carries the password. */
export class ConnectError extends Error {
  constructor(
    message: string,
    readonly kind: ConnectFailureKind,
    /** The server certificate that was refused (kind `certificate`). */
    readonly certificate?: CertificateInfo,
    readonly status?: string,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

export interface OpenedSession {
  client: OPCUAClient;
  session: ClientSession;
  /** The certificate verdict of this attempt (secure modes only). */
  verdict?: ServerCertificateVerdict;
  /** Closes the session (deleting its subscriptions on the server), the channel and the certificate manager. */
  close(): Promise<void>;
}

/**
 * Connects and opens a session, with node-opcua's own reconnection switched off (`maxRetry: 0`): the caller owns
 * retries, see opcua-source.ts for why. Every step is bounded by `requestTimeoutMs`.
 */
export async function openSession(
  opcua: Opcua, target: SessionTarget, onVerdict?: (v: ServerCertificateVerdict) => void, signal?: AbortSignal,
): Promise<OpenedSession> {
  let verdict: ServerCertificateVerdict | undefined;
  const manager = createClientCertificateManager(opcua, {
    pkiDir: target.pkiDir,
    trustUnknown: target.trustUnknown,
    onVerdict: (v) => {
      verdict = v;
      onVerdict?.(v);
    },
  });
  let identity: UserIdentityInfo;
  try {
    identity = userIdentity(opcua, target.auth);
    await ensureOwnCertificate(manager, target.pkiDir);
  } catch (err) {
    await disposeCertificateManager(manager);
    throw err;
  }
  const client = opcua.OPCUAClient.create({
    applicationName: 'lineguard',
    applicationUri: APPLICATION_URI,
    clientName: target.clientName,
    securityMode: opcua.MessageSecurityMode[target.mode],
    securityPolicy: opcua.SecurityPolicy[target.policy],
    // PLCs behind NAT or with a hostname in their endpoint description: connect to the URL we were given.
    endpointMustExist: false,
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 500 },
    keepSessionAlive: true,
    requestedSessionTimeout: target.sessionTimeoutMs,
    defaultTransactionTimeout: target.requestTimeoutMs,
    transportTimeout: target.requestTimeoutMs,
    clientCertificateManager: manager,
  });
  const closeClient = async (session?: ClientSession): Promise<void> => {
    // Bounded: after a network cut the close request gets no answer, and the reconnect must not wait for it.
    if (session) await bounded(session.close(true), 1000).catch(() => undefined);
    await bounded(client.disconnect(), 2000).catch(() => undefined);
    await disposeCertificateManager(manager).catch(() => undefined);
  };

  // Stopping the daemon must not wait for a connect to a black-holed address: disconnect cancels it.
  const onAbort = (): void => void client.disconnect().catch(() => undefined);
  signal?.addEventListener('abort', onAbort, { once: true });
  let session: ClientSession;
  try {
    await bounded(client.connect(target.endpoint), target.connectTimeoutMs ?? target.requestTimeoutMs * 2, 'connect');
    session = await bounded(client.createSession(identity), target.requestTimeoutMs, 'create session');
  } catch (err) {
    await closeClient();
    throw classify(err, target, verdict);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  let closed: Promise<void> | undefined;
  return {
    client,
    session,
    ...(verdict ? { verdict } : {}),
    close: () => (closed ??= closeClient(session)),
  };
}

const HOST = hostname();
/** Our application URI; it is in our certificate, and servers check that the two agree. */
export const APPLICATION_URI = `urn:${HOST}:lineguard`;
const creating = new Map<string, Promise<void>>();

/**
 * Creates our application certificate on first use, with a subject a plant engineer recognises in the PLC's trust
 * list (node-opcua's own default names its vendor). One creation per PKI folder at a time.
 */
async function ensureOwnCertificate(manager: OPCUACertificateManager, pkiDir: string): Promise<void> {
  const file = pkiLayout(pkiDir).ownCertificate;
  if (existsSync(file)) return;
  let pending = creating.get(file);
  if (!pending) {
    pending = (async () => {
      await manager.initialize();
      if (existsSync(file)) return;
      await manager.createSelfSignedCertificate({
        applicationUri: APPLICATION_URI,
        dns: [HOST],
        outputFile: file,
        subject: `/CN=lineguard@${HOST}/O=Lineguard`,
        startDate: new Date(),
        validity: 365 * 10,
      });
    })().finally(() => creating.delete(file));
    creating.set(file, pending);
  }
  await pending;
}

/** Builds the user identity; reads the user certificate files (errors name the file, never the key). */
export function userIdentity(opcua: Opcua, auth: OpcuaServerConfig['auth']): UserIdentityInfo {
  if (auth.type === 'username') {
    return { type: opcua.UserTokenType.UserName, userName: auth.username ?? '', password: auth.password ?? '' };
  }
  if (auth.type === 'certificate') {
    let certificateData: Buffer;
    let privateKey: string;
    try {
      certificateData = readCertificateFile(auth.certificateFile ?? '');
    } catch (err) {
      throw new ConnectError(`cannot read the user certificate ${auth.certificateFile}: ${(err as Error).message}`, 'other');
    }
    try {
      privateKey = readFileSync(auth.privateKeyFile ?? '', 'utf8');
    } catch (err) {
      throw new ConnectError(`cannot read the user private key ${auth.privateKeyFile}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`, 'other');
    }
    return { type: opcua.UserTokenType.Certificate, certificateData, privateKey };
  }
  return { type: opcua.UserTokenType.Anonymous };
}

const AUTH_CODES = ['BadUserAccessDenied', 'BadIdentityTokenInvalid', 'BadIdentityTokenRejected', 'BadUserSignatureInvalid'];

/** Turns node-opcua's errors into one sentence that says what to do. */
export function classify(err: unknown, target: SessionTarget, verdict: ServerCertificateVerdict | undefined): ConnectError {
  if (err instanceof ConnectError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (verdict && verdict.status !== 'Good') {
    const c = verdict.certificate;
    if (verdict.replaces) {
      return new ConnectError(
        `server certificate "${c.subject}" (thumbprint ${c.thumbprint}) is not the one trusted for this server (${verdict.replaces.thumbprint}): ` +
          `trust on first use refuses a changed certificate. If the server was given a new certificate, run: lineguard pki trust ${c.thumbprint}`,
        'certificate', c, verdict.status,
      );
    }
    if (verdict.status === 'BadCertificateUntrusted') {
      return new ConnectError(
        `server certificate "${c.subject}" (thumbprint ${c.thumbprint}) is not trusted; to trust it run: lineguard pki trust ${c.thumbprint}`,
        'certificate', c, verdict.status,
      );
    }
    return new ConnectError(`server certificate "${c.subject}" (thumbprint ${c.thumbprint}) was refused: ${verdict.status}`, 'certificate', c, verdict.status);
  }
  const code = AUTH_CODES.find((c) => message.includes(c));
  if (code) {
    const who = target.auth.type === 'username' ? `user "${target.auth.username}"` : target.auth.type === 'certificate' ? 'the user certificate' : 'anonymous access';
    const hint = code === 'BadUserAccessDenied' ? (target.auth.type === 'username' ? ': wrong username or password' : ': not allowed') : '';
    return new ConnectError(`the server refused ${who}${hint} (${code})`, 'auth', undefined, code);
  }
  if (/cannot find endpoint for securityMode/i.test(message)) {
    return new ConnectError(`the server offers no endpoint with security mode ${target.mode} and policy ${target.policy}; run lineguard browse to see what it offers`, 'security');
  }
  if (/BadSecurityChecksFailed|BadCertificateUntrusted|BadCertificateInvalid|BadCertificateUriInvalid/.test(message)) {
    const own = pkiLayout(target.pkiDir).ownCertificate;
    return new ConnectError(`the server refused our client certificate; trust ${own} on the server (${firstLine(message)})`, 'server-refused-client');
  }
  const cause = causeOf(message);
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) {
    return new ConnectError(`cannot reach ${target.endpoint}: its host name does not resolve (${cause}); check the endpoint and DNS`, 'network');
  }
  if (/ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|socket has been disconnected|closed by server|premature/i.test(message)) {
    return new ConnectError(`cannot reach ${target.endpoint}: ${cause}`, 'network');
  }
  if (/timed? ?out|Timeout/i.test(message)) return new ConnectError(`no answer from ${target.endpoint} in time: ${cause}`, 'timeout');
  return new ConnectError(cause, 'other');
}

/**
 * node-opcua's connect errors open with a generic sentence ("The connection may have been rejected by server,") and
 * name the cause on a later line as `Err = (getaddrinfo ENOTFOUND plc1)`: that cause is what the engineer needs.
 */
function causeOf(message: string): string {
  const inner = /Err = \((.*)\)\s*$/s.exec(message)?.[1];
  return firstLine(inner ?? message);
}

/** Rejects when `promise` has not settled after `ms`; the late result is dropped. */
export function bounded<T>(promise: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? text).slice(0, 300);
}

