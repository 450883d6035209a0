import type { Logger } from 'pino';
import type { OpcuaServerConfig } from './config.js';
import type { ParsedNodeId } from './node-id.js';
import type { Opcua } from './opcua-module.js';
import { Poller } from './poller.js';
import type { SampleSink } from './sample-sink.js';
import { bounded, type OpenedSession } from './session-opener.js';
import { SilenceWatchdog } from './silence-watchdog.js';
import { SubscriptionRunner } from './subscription-runner.js';
import { resolveTags, type ResolvedTag } from './tag-plan.js';
import type { TagStatusBoard } from './tag-status-board.js';

export interface LiveConnectionOptions {
  opcua: Opcua;
  opened: OpenedSession;
  cfg: OpcuaServerConfig;
  parsed: ReadonlyArray<ParsedNodeId | string>;
  board: TagStatusBoard;
  sink: SampleSink;
  log: Logger;
}

/**
 * Everything that lives exactly as long as one session: the namespace table, the subscription and its items, the
 * poll loops, the silence watchdog and the retry of degraded tags. `lost` resolves (once) with the reason the
 * session must be abandoned; the source then closes this and builds a new one on a new session.
 */
export class LiveConnection {
  readonly lost: Promise<string>;
  #resolveLost!: (reason: string) => void;
  #isLost = false;
  readonly #o: LiveConnectionOptions;
  #namespaceArray: string[] = [];
  #runner: SubscriptionRunner | undefined;
  #poller: Poller;
  #watchdog: SilenceWatchdog | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retrying = false;
  #closed: Promise<void> | undefined;

  constructor(o: LiveConnectionOptions) {
    this.#o = o;
    this.lost = new Promise((resolve) => (this.#resolveLost = resolve));
    const onLost = (reason: string): void => this.markLost(reason);
    const { client, session } = o.opened;
    client.on('connection_lost', () => onLost('the connection to the server was lost'));
    client.on('close', (err?: Error | null) => onLost(err ? `the connection closed: ${err.message}` : 'the connection closed'));
    session.on('session_closed', (status: { name: string }) => onLost(`the server closed the session (${status.name})`));
    session.on('keepalive_failure', () => onLost('the session keep-alive failed'));
    this.#poller = new Poller({
      opcua: o.opcua, session, cfg: o.cfg, sink: o.sink, log: o.log, onLost, onContact: () => this.#watchdog?.touch(),
    });
  }

  /** Reads the namespace table, resolves every tag, creates the subscription, its items and the poll loops. */
  async establish(): Promise<void> {
    const { cfg, board, sink, log } = this.#o;
    this.#namespaceArray = await bounded(this.#o.opened.session.readNamespaceArray(), cfg.requestTimeoutMs, 'read NamespaceArray');
    log.debug({ namespaceArray: this.#namespaceArray }, 'server namespaces');
    const all = cfg.tags.map((_, i) => i);
    const { resolved, failed } = resolveTags(all, cfg.tags, this.#o.parsed, this.#namespaceArray);
    for (const f of failed) sink.degrade(f.index, f.reason, 'resolve');
    const subscribed = resolved.filter((t) => cfg.tags[t.index]!.mode === 'subscribe');
    const polled = resolved.filter((t) => cfg.tags[t.index]!.mode === 'poll');
    board.resetEpoch(Date.now());
    if (cfg.tags.some((t) => t.mode === 'subscribe')) {
      this.#runner = await SubscriptionRunner.create({
        opcua: this.#o.opcua, session: this.#o.opened.session, cfg, board, sink, log,
        onContact: () => this.#watchdog?.touch(),
        onLost: (reason) => this.markLost(reason),
      });
      await this.#runner.monitor(subscribed);
    }
    this.#poller.add(polled);
    this.#startWatchdog();
    this.#retryTimer = setInterval(() => void this.#retryDegraded(), cfg.retryDegradedMs);
    this.#retryTimer.unref();
  }

  get monitoredItems(): number {
    return this.#runner?.activeItems ?? 0;
  }

  get polledTags(): number {
    return this.#poller.tagCount;
  }

  /** Keep-alive period granted by the server, ms (0 without subscription). */
  get keepAlivePeriodMs(): number {
    return this.#runner?.keepAlivePeriodMs ?? 0;
  }

  markLost(reason: string): void {
    if (this.#isLost) return;
    this.#isLost = true;
    this.#resolveLost(reason);
  }

  /** Stops every timer and loop, then closes the session (deleting its subscription) and the channel. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.markLost('closing');
      this.#watchdog?.stop();
      if (this.#retryTimer) clearInterval(this.#retryTimer);
      this.#poller.stop();
      this.#runner?.dispose();
      await this.#o.opened.close();
    })();
    return this.#closed;
  }

  #startWatchdog(): void {
    const { cfg, log } = this.#o;
    if (this.#watchdog) return;
    const period = Math.max(this.#runner?.keepAlivePeriodMs ?? 0, this.#poller.maxPeriodMs);
    if (period === 0) return;
    const timeoutMs = cfg.silenceTimeoutIntervals * period;
    log.debug({ timeoutMs }, 'silence watchdog armed');
    this.#watchdog = new SilenceWatchdog(timeoutMs, (silentMs) => this.markLost(`connected but silent: no data and no keep-alive for ${silentMs} ms`));
    this.#watchdog.start();
  }

  /** Retries degraded tags (see DegradedKind for what each kind needs); one run at a time. */
  async #retryDegraded(): Promise<void> {
    if (this.#retrying || this.#isLost) return;
    this.#retrying = true;
    const { cfg, board, sink, log } = this.#o;
    try {
      const unresolved = board.degradedIndices(['resolve']);
      if (unresolved.length > 0) {
        this.#namespaceArray = await bounded(this.#o.opened.session.readNamespaceArray(), cfg.requestTimeoutMs, 'read NamespaceArray');
      }
      const resolve = (indices: number[]): ResolvedTag[] => {
        const { resolved, failed } = resolveTags(indices, cfg.tags, this.#o.parsed, this.#namespaceArray);
        for (const f of failed) sink.degrade(f.index, f.reason, 'resolve');
        return resolved;
      };
      const toCreate = resolve([...unresolved, ...board.degradedIndices(['create'])]);
      const toRecreate = resolve(board.degradedIndices(['status']));
      if (toCreate.length + toRecreate.length === 0) return;
      log.debug({ create: toCreate.length, recreate: toRecreate.length }, 'retrying degraded tags');
      const isPolled = (t: ResolvedTag): boolean => cfg.tags[t.index]!.mode === 'poll';
      this.#poller.add(toCreate.filter(isPolled));
      for (const t of toCreate.filter(isPolled)) board.recover(t.index);
      await this.#runner?.monitor(toCreate.filter((t) => !isPolled(t)));
      await this.#runner?.remonitor(toRecreate.filter((t) => !isPolled(t)));
      this.#startWatchdog();
    } catch (err) {
      log.debug({ err }, 'retry of degraded tags failed; next period tries again');
    } finally {
      this.#retrying = false;
    }
  }
}
