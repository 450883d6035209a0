import path from 'node:path';
import type { Logger } from 'pino';
import { sleep } from '../../core/backoff.js';
import type { Component, ComponentContext, ComponentHealth } from '../../core/component.js';
import type { ServerCertificateVerdict } from './certificate-manager.js';
import { effectivePolicy, type OpcuaServerConfig } from './config.js';
import { LiveConnection } from './live-connection.js';
import type { ParsedNodeId } from './node-id.js';
import { loadOpcua, routeOpcuaLogs } from './opcua-module.js';
import { SampleSink } from './sample-sink.js';
import { ConnectError, openSession, type SessionTarget } from './session-opener.js';
import { SourceMetrics, type SessionState } from './source-metrics.js';
import { ReconnectDelay } from './reconnect-delay.js';
import { parseTags } from './tag-plan.js';
import { TagStatusBoard } from './tag-status-board.js';

const METRICS_REFRESH_MS = 5_000;

/**
 * Reads one OPC UA server's tags and publishes them on the tag bus as TagSamples (source timestamp, quality from
 * the StatusCode).
 *
 * Reconnection is ours, not node-opcua's. node-opcua's client can repair a broken channel itself and then
 * transfer or recreate subscriptions, but that path is where subscriptions are reported to die silently after a
 * server restart (node-opcua issues #1059 "Automatic reconnect does not restore subscription", #474, #674;
 * TransferSubscriptions answered BadServiceUnsupported by PLCs, mikakaraila/node-red-contrib-opcua #123), and a
 * restarted server has lost every subscription anyway while its namespace indexes may have moved. So the client is
 * created with `maxRetry: 0` and on any sign of trouble (connection lost, session closed, subscription terminated
 * or silent, a read failing) the whole stack is dropped and rebuilt: new certificate manager (re-reads trusted/),
 * channel, session, NamespaceArray, subscription, monitored items. Attempts are spaced by exponential backoff with
 * full jitter. The cost is a few seconds of gap per reconnect, which no transfer could have avoided after a restart.
 */
export class OpcuaSource implements Component {
  readonly name: string;
  readonly #cfg: OpcuaServerConfig;
  readonly #ctx: ComponentContext;
  readonly #log: Logger;
  #board: TagStatusBoard | undefined;
  #metrics: SourceMetrics | undefined;
  #sink: SampleSink | undefined;
  #parsed: ReadonlyArray<ParsedNodeId | string> = [];
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #connection: LiveConnection | undefined;
  #metricsTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<void> | undefined;
  #stopped = false;
  #attempted = false;
  #session: SessionState = 'disconnected';
  #connectedSince: number | undefined;
  #sessions = 0;
  #lastError: string | undefined;
  #lastErrorLogged: string | undefined;
  #failedAttempts = 0;
  #untrusted: ServerCertificateVerdict['certificate'] | undefined;
  /** The daemon's signal and our listener on it, removed at stop (one per start leaked on every reload). */
  #outer: { signal: AbortSignal; listener: () => void } | undefined;
  #trustOnFirstUseWarned = false;
  readonly #delays: ReconnectDelay;
  readonly #loggedThumbprints = new Set<string>();

  constructor(cfg: OpcuaServerConfig, ctx: ComponentContext) {
    this.name = `opcua/${cfg.name}`;
    this.#cfg = cfg;
    this.#ctx = ctx;
    this.#log = ctx.log;
    this.#delays = new ReconnectDelay(cfg.reconnect);
  }

  /** Resolves after the first connect attempt (success or failure); retries go on in the background. */
  async start(signal: AbortSignal): Promise<void> {
    if (this.#loop || this.#stopped) return;
    const cfg = this.#cfg;
    this.#board = new TagStatusBoard(cfg.tags);
    this.#metrics = new SourceMetrics(this.#ctx.metrics, cfg.name, cfg.tags.map((t) => t.tag), cfg.perTagAgeMetric);
    this.#sink = new SampleSink(cfg.tags, this.name, this.#board, this.#metrics, this.#ctx.bus, this.#log);
    this.#parsed = parseTags(cfg.tags);
    this.#abort = new AbortController();
    const abort = this.#abort;
    if (signal.aborted) abort.abort();
    else {
      const listener = (): void => abort.abort();
      signal.addEventListener('abort', listener, { once: true });
      this.#outer = { signal, listener };
    }
    this.#metricsTimer = setInterval(() => this.#refreshMetrics(), METRICS_REFRESH_MS);
    this.#metricsTimer.unref();

    let firstAttempt!: () => void;
    const attempted = new Promise<void>((resolve) => (firstAttempt = resolve));
    this.#loop = this.#run(abort.signal, firstAttempt).catch((err) => this.#log.error({ err }, 'OPC UA connection loop failed'));
    // A black-holed address would hold the daemon's startup for the whole connect timeout: give up waiting earlier.
    const waited = new AbortController();
    const stopWaiting = (): void => waited.abort();
    abort.signal.addEventListener('abort', stopWaiting, { once: true });
    await Promise.race([attempted, sleep(Math.min(cfg.requestTimeoutMs, 10_000), waited.signal).catch(() => undefined)]);
    waited.abort();
    abort.signal.removeEventListener('abort', stopWaiting);
  }

  async stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#stopped = true;
      this.#outer?.signal.removeEventListener('abort', this.#outer.listener);
      this.#outer = undefined;
      this.#abort?.abort();
      if (this.#metricsTimer) clearInterval(this.#metricsTimer);
      // Closing also fails the requests of a connection still being set up, so the loop ends promptly.
      void this.#connection?.close();
      const waited = new AbortController();
      if (this.#loop) await Promise.race([this.#loop, sleep(4500, waited.signal).catch(() => undefined)]);
      waited.abort();
      this.#setSession('disconnected');
      this.#metrics?.remove();
    })();
    return this.#stopping;
  }

  health(): ComponentHealth {
    const board = this.#board;
    const degradedCount = board?.degradedCount ?? 0;
    const tagCount = this.#cfg.tags.length;
    const details: Record<string, unknown> = {
      endpoint: this.#cfg.endpoint,
      securityMode: this.#cfg.security.mode,
      securityPolicy: effectivePolicy(this.#cfg.security),
      session: this.#session,
      ...(this.#connectedSince ? { connectedSince: new Date(this.#connectedSince).toISOString() } : {}),
      reconnects: Math.max(0, this.#sessions - 1),
      tags: tagCount,
      monitoredItems: this.#connection?.monitoredItems ?? 0,
      polledTags: this.#connection?.polledTags ?? 0,
      degradedTagCount: degradedCount,
      degradedTags: (board?.degraded(50) ?? []).map((d) => ({ tag: d.tag, nodeId: d.nodeId, reason: d.reason })),
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      ...(this.#untrusted
        ? {
          untrustedServerCertificate: {
            subject: this.#untrusted.subject,
            thumbprint: this.#untrusted.thumbprint,
            command: this.#trustCommand(this.#untrusted.thumbprint),
          },
        }
        : {}),
    };
    if (this.#stopped) return { state: 'stopped', details };
    if (this.#session === 'connected') {
      if (degradedCount === 0) return { state: 'up', details };
      const first = board!.degraded(1)[0]!;
      return { state: 'degraded', reason: `${degradedCount} of ${tagCount} tags degraded (${first.tag}: ${first.reason})`, details };
    }
    if (!this.#attempted) return { state: 'starting', reason: `connecting to ${this.#cfg.endpoint}`, details };
    return { state: 'down', reason: `not connected to ${this.#cfg.endpoint}: ${this.#lastError ?? 'connecting'}`, details };
  }

  async #run(signal: AbortSignal, firstAttempt: () => void): Promise<void> {
    const delays = this.#delays;
    while (!signal.aborted) {
      this.#setSession('connecting');
      const connection = await this.#connect(signal);
      this.#attempted = true;
      firstAttempt();
      if (connection) {
        delays.connected();
        const reason = await connection.lost;
        delays.lost();
        this.#connection = undefined;
        this.#connectedSince = undefined;
        this.#setSession('disconnected');
        if (!signal.aborted) this.#sink?.connectionLost();
        await connection.close();
        if (signal.aborted) break;
        this.#lastError = reason;
        this.#log.warn({ endpoint: this.#cfg.endpoint, reason }, `session lost: ${reason}; reconnecting`);
      }
      if (signal.aborted) break;
      this.#setSession('disconnected');
      // Not connected (also when the first attempt failed): values held from before are not current.
      this.#sink?.connectionLost();
      const delay = delays.next();
      this.#log.debug({ delayMs: delay, attempt: delays.attempts, recentlyHealthy: delays.recentlyHealthy }, 'next connect attempt');
      await sleep(delay, signal).catch(() => undefined);
    }
  }

  /** One connect attempt; returns the live connection, or undefined after recording why it failed. */
  async #connect(signal: AbortSignal): Promise<LiveConnection | undefined> {
    const cfg = this.#cfg;
    let connection: LiveConnection | undefined;
    try {
      const opcua = await loadOpcua();
      routeOpcuaLogs(opcua, this.#ctx.log);
      if (signal.aborted) return undefined;
      if (cfg.security.trustOnFirstUse && !this.#trustOnFirstUseWarned) {
        // Once per start, not at every reconnect attempt.
        this.#trustOnFirstUseWarned = true;
        this.#log.warn({ endpoint: cfg.endpoint }, 'trustOnFirstUse is ON: an unknown server certificate will be trusted without asking (turn it off once the server is trusted)');
      }
      const target: SessionTarget = {
        endpoint: cfg.endpoint,
        mode: cfg.security.mode,
        policy: effectivePolicy(cfg.security),
        auth: cfg.auth,
        trustUnknown: cfg.security.trustOnFirstUse ? 'first-use' : 'never',
        pkiDir: path.join(this.#ctx.stateDir, 'pki'),
        sessionTimeoutMs: cfg.sessionTimeoutMs,
        requestTimeoutMs: cfg.requestTimeoutMs,
        connectTimeoutMs: this.#delays.connectTimeout(cfg.requestTimeoutMs * 2),
        clientName: `lineguard/${this.#ctx.gatewayId}/${cfg.name}`,
      };
      const opened = await openSession(opcua, target, (v) => this.#onVerdict(v), signal);
      connection = new LiveConnection({ opcua, opened, cfg, parsed: this.#parsed, board: this.#board!, sink: this.#sink!, log: this.#log });
      this.#connection = connection;
      await connection.establish();
      if (signal.aborted) {
        await connection.close();
        return undefined;
      }
      this.#sessions++;
      if (this.#sessions > 1) this.#metrics?.reconnected();
      this.#connectedSince = Date.now();
      this.#lastError = undefined;
      this.#lastErrorLogged = undefined;
      this.#failedAttempts = 0;
      this.#setSession('connected');
      this.#refreshMetrics();
      this.#log.info(
        {
          endpoint: cfg.endpoint, securityMode: cfg.security.mode, securityPolicy: target.policy, session: this.#sessions,
          monitoredItems: connection.monitoredItems, polledTags: connection.polledTags, degradedTags: this.#board!.degradedCount,
          keepAlivePeriodMs: connection.keepAlivePeriodMs,
        },
        this.#sessions > 1 ? 'reconnected: session, subscription and monitored items rebuilt' : 'connected',
      );
      return connection;
    } catch (err) {
      this.#connection = undefined;
      await connection?.close();
      if (signal.aborted) return undefined;
      this.#recordFailure(err);
      return undefined;
    }
  }

  #recordFailure(err: unknown): void {
    const failure = err instanceof ConnectError ? err : new ConnectError(err instanceof Error ? err.message : String(err), 'other');
    this.#failedAttempts++;
    if (failure.kind === 'timeout') this.#delays.timedOut();
    this.#lastError = failure.message;
    this.#metrics?.connectFailed(failure.kind);
    // Once per distinct reason at warn (a certificate refusal was already logged once per thumbprint); repeats at debug.
    if (failure.kind !== 'certificate' && failure.message !== this.#lastErrorLogged) {
      this.#lastErrorLogged = failure.message;
      this.#log.warn({ endpoint: this.#cfg.endpoint, kind: failure.kind, reason: failure.message }, `connect failed: ${failure.message}`);
    } else {
      this.#log.debug({ attempt: this.#failedAttempts, kind: failure.kind, reason: failure.message }, 'connect failed again');
    }
  }

  #onVerdict(v: ServerCertificateVerdict): void {
    const c = v.certificate;
    if (v.status === 'Good') {
      if (v.trustedNow) {
        this.#log.warn({ thumbprint: c.thumbprint, subject: c.subject }, `TRUST ON FIRST USE: trusted server certificate "${c.subject}" (thumbprint ${c.thumbprint}) without asking`);
      }
      if (this.#untrusted?.thumbprint === c.thumbprint) this.#log.info({ thumbprint: c.thumbprint }, 'server certificate is trusted now');
      this.#untrusted = undefined;
      return;
    }
    this.#untrusted = c;
    if (this.#loggedThumbprints.has(c.thumbprint)) return;
    this.#loggedThumbprints.add(c.thumbprint);
    const command = this.#trustCommand(c.thumbprint);
    this.#log.error(
      { endpoint: this.#cfg.endpoint, subject: c.subject, thumbprint: c.thumbprint, status: v.status, validTo: c.validTo.toISOString(), command },
      `server certificate "${c.subject}" (thumbprint ${c.thumbprint}) refused: ${v.status}. If it is the right server, trust it with: ${command}`,
    );
  }

  /**
   * The command that trusts a certificate for this gateway: with its state directory, so it acts on the PKI of the
   * running gateway, whatever config file (or none) the shell would find.
   */
  #trustCommand(thumbprint: string): string {
    return `lineguard pki trust --state-dir ${shellWord(this.#ctx.stateDir)} ${thumbprint}`;
  }

  #setSession(state: SessionState): void {
    this.#session = state;
    this.#metrics?.setSessionState(state);
  }

  #refreshMetrics(): void {
    if (!this.#metrics || !this.#board) return;
    this.#metrics.setMonitoredItems(this.#connection?.monitoredItems ?? 0);
    this.#metrics.refreshTags(this.#board, Date.now());
  }
}

/** A path as one shell word (quoted only when it needs to be). */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
