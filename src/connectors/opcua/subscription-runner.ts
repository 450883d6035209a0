import type { ClientMonitoredItemBase, ClientSession, ClientSubscription, MonitoringParametersOptions, NotificationMessage } from 'node-opcua';
import type { Logger } from 'pino';
import type { OpcuaServerConfig } from './config.js';
import type { Opcua } from './opcua-module.js';
import type { SampleSink } from './sample-sink.js';
import { bucketize, type ItemBucket, type ResolvedTag } from './tag-plan.js';
import type { TagStatusBoard } from './tag-status-board.js';
import { mapDataValue, type DataValueLike } from './value-mapping.js';
import { bounded } from './session-opener.js';

export interface SubscriptionRunnerOptions {
  opcua: Opcua;
  session: ClientSession;
  cfg: OpcuaServerConfig;
  board: TagStatusBoard;
  sink: SampleSink;
  log: Logger;
  /** Any sign of life from the subscription: data or keep-alive. */
  onContact: () => void;
  /** The subscription is dead (terminated, timed out, publish failing): the caller reconnects. */
  onLost: (reason: string) => void;
}

/**
 * One subscription and its monitored items, for one session. On reconnect it is not repaired but rebuilt on the new
 * session (see opcua-source.ts).
 *
 * Notifications are taken from the subscription's `received_notifications` event — one call per publish response,
 * mapped by client handle — rather than from per-item `changed` events: one TagSample batch per response.
 * node-opcua assigns client handles only when it sends the create request, and registers the item in the
 * subscription at that moment; an unseen handle is therefore looked up once in the subscription's item table, so
 * values the server sends while the create call is still in flight are not lost.
 */
export class SubscriptionRunner {
  readonly #o: SubscriptionRunnerOptions;
  readonly #subscription: ClientSubscription;
  readonly #handleToIndex = new Map<number, number>();
  /** Tag index of every item we created, for handles seen before the create call returned. */
  readonly #itemToIndex = new WeakMap<object, number>();
  readonly #items = new Map<number, ClientMonitoredItemBase>();
  #disposed = false;
  readonly #listeners: Array<[string, (...args: unknown[]) => void]> = [];

  private constructor(o: SubscriptionRunnerOptions, subscription: ClientSubscription) {
    this.#o = o;
    this.#subscription = subscription;
    this.#listen();
  }

  /** Creates the subscription on the server and logs what the server granted. */
  static async create(o: SubscriptionRunnerOptions): Promise<SubscriptionRunner> {
    const { cfg } = o;
    const subscription = await bounded(
      o.session.createSubscription2({
        requestedPublishingInterval: cfg.publishingIntervalMs,
        requestedMaxKeepAliveCount: cfg.keepAliveCount,
        // Lifetime must be at least 3 × keep-alive (Part 4, 5.13.2); more gives a slow reconnect time to transfer.
        requestedLifetimeCount: cfg.keepAliveCount * 6,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 10,
      }),
      cfg.requestTimeoutMs,
      'create subscription',
    );
    o.log.info(
      {
        subscriptionId: subscription.subscriptionId,
        requestedPublishingIntervalMs: cfg.publishingIntervalMs,
        revisedPublishingIntervalMs: subscription.publishingInterval,
        revisedMaxKeepAliveCount: subscription.maxKeepAliveCount,
        revisedLifetimeCount: subscription.lifetimeCount,
      },
      'subscription created',
    );
    return new SubscriptionRunner(o, subscription);
  }

  /** Keep-alive period the server granted (publishing interval × max keep-alive count), in ms. */
  get keepAlivePeriodMs(): number {
    return this.#subscription.publishingInterval * this.#subscription.maxKeepAliveCount;
  }

  get activeItems(): number {
    return this.#items.size;
  }

  /** Creates monitored items for `tags`, in chunks; refused items degrade their tag only. */
  async monitor(tags: readonly ResolvedTag[]): Promise<void> {
    const revisedSampling = new Map<number, number>();
    const revisedQueue = new Map<number, number>();
    let created = 0;
    for (const bucket of bucketize(tags, this.#o.cfg.tags, this.#o.cfg.maxItemsPerCall)) {
      if (this.#disposed) return;
      created += await this.#createChunk(bucket, revisedSampling, revisedQueue);
    }
    if (tags.length > 0) {
      this.#o.log.info(
        {
          requested: tags.length,
          created,
          refused: tags.length - created,
          revisedSamplingIntervalMs: Object.fromEntries(revisedSampling),
          revisedQueueSize: Object.fromEntries(revisedQueue),
        },
        'monitored items created (revised sampling interval and queue size: value → number of items)',
      );
    }
  }

  /** Deletes the items of `indices` (if any) and creates them again: the retry for tags whose node vanished. */
  async remonitor(tags: readonly ResolvedTag[]): Promise<void> {
    for (const t of tags) {
      const item = this.#items.get(t.index);
      if (!item) continue;
      this.#items.delete(t.index);
      this.#handleToIndex.delete(item.monitoringParameters.clientHandle);
      await bounded(item.terminate(), this.#o.cfg.requestTimeoutMs, 'delete monitored item').catch(() => undefined);
    }
    await this.monitor(tags);
  }

  /** Stops listening. The subscription itself goes with the session (closed with deleteSubscriptions). */
  dispose(): void {
    this.#disposed = true;
    for (const [event, listener] of this.#listeners) this.#subscription.removeListener(event, listener);
    this.#listeners.length = 0;
    // An `error` emitted after we stopped listening must not crash the process.
    this.#subscription.on('error', () => undefined);
    this.#handleToIndex.clear();
    this.#items.clear();
  }

  async #createChunk(bucket: ItemBucket, revisedSampling: Map<number, number>, revisedQueue: Map<number, number>): Promise<number> {
    const { opcua, board, sink, cfg, log } = this.#o;
    const parameters: MonitoringParametersOptions = {
      samplingInterval: bucket.samplingIntervalMs,
      queueSize: bucket.queueSize,
      discardOldest: true,
      filter: bucket.deadband
        ? new opcua.DataChangeFilter({
          trigger: opcua.DataChangeTrigger.StatusValue,
          deadbandType: bucket.deadband.type === 'absolute' ? opcua.DeadbandType.Absolute : opcua.DeadbandType.Percent,
          deadbandValue: bucket.deadband.value,
        })
        : null,
    };
    const itemsToMonitor = bucket.items.map((t) => ({
      nodeId: t.nodeId,
      attributeId: opcua.AttributeIds.Value,
      ...(t.indexRange !== undefined ? { indexRange: new opcua.NumericRange(t.indexRange) } : {}),
    }));
    const group = opcua.ClientMonitoredItemGroup.create(this.#subscription, itemsToMonitor, parameters, opcua.TimestampsToReturn.Both);
    group.monitoredItems.forEach((item, k) => this.#itemToIndex.set(item, bucket.items[k]!.index));
    await bounded(
      new Promise<void>((resolve, reject) => {
        group.once('initialized', () => resolve());
        group.once('terminated', (err?: Error) => (err ? reject(err) : resolve()));
      }),
      cfg.requestTimeoutMs,
      'create monitored items',
    );
    let created = 0;
    group.monitoredItems.forEach((item, k) => {
      const index = bucket.items[k]!.index;
      const status = item.statusCode;
      if (status.isGood()) {
        created++;
        this.#handleToIndex.set(item.monitoringParameters.clientHandle, index);
        this.#items.set(index, item);
        const sampling = item.monitoringParameters.samplingInterval;
        const queue = item.monitoringParameters.queueSize;
        revisedSampling.set(sampling, (revisedSampling.get(sampling) ?? 0) + 1);
        revisedQueue.set(queue, (revisedQueue.get(queue) ?? 0) + 1);
        if (sampling !== bucket.samplingIntervalMs || queue !== bucket.queueSize) {
          log.debug({ tag: cfg.tags[index]!.tag, requestedSamplingIntervalMs: bucket.samplingIntervalMs, samplingIntervalMs: sampling, requestedQueueSize: bucket.queueSize, queueSize: queue }, 'server revised the monitored item');
        }
        const kind = board.kindOf(index);
        // A tag degraded by the status of its values ('status') recovers at its next usable value (SampleSink), not
        // here: recovering at the re-create made every retry log "recovered" and then "degraded" again.
        if (kind === 'create' || kind === 'resolve') {
          board.recover(index);
          log.info({ tag: cfg.tags[index]!.tag, nodeId: cfg.tags[index]!.nodeId }, 'tag recovered: monitored item created');
        }
      } else {
        this.#handleToIndex.delete(item.monitoringParameters.clientHandle);
        const hint = bucket.deadband && /Filter|Deadband/.test(status.name)
          ? bucket.deadband.type === 'percent'
            ? ' (a percent deadband needs a numeric variable with an EURange; use an absolute deadband)'
            : ' (a deadband needs a numeric variable)'
          : '';
        sink.degrade(index, `the server refused the monitored item: ${status.name}${hint}`, 'create');
      }
    });
    return created;
  }

  /** A handle seen before its create call returned: find the item node-opcua registered for it. */
  #lateHandle(handle: number): number | undefined {
    const item = (this.#subscription.monitoredItems as Record<number, object | undefined>)[handle];
    const index = item ? this.#itemToIndex.get(item) : undefined;
    if (index !== undefined) this.#handleToIndex.set(handle, index);
    return index;
  }

  #listen(): void {
    const { onContact, onLost, sink } = this.#o;
    const on = <A extends unknown[]>(event: string, listener: (...args: A) => void): void => {
      const safe = (...args: A): void => {
        try {
          listener(...args);
        } catch (err) {
          this.#o.log.error({ err }, `error in the ${event} handler`);
        }
      };
      this.#subscription.on(event as 'keepalive', safe as () => void);
      this.#listeners.push([event, safe as unknown as (...args: unknown[]) => void]);
    };
    on('keepalive', () => onContact());
    on('received_notifications', (message: NotificationMessage) => {
      onContact();
      const now = Date.now();
      for (const data of message.notificationData ?? []) {
        const items = (data as { monitoredItems?: Array<{ clientHandle: number; value: DataValueLike }> }).monitoredItems;
        if (!items) continue;
        for (const n of items) {
          const index = this.#handleToIndex.get(n.clientHandle) ?? this.#lateHandle(n.clientHandle);
          if (index === undefined) continue;
          try {
            sink.accept(index, mapDataValue(n.value, this.#o.cfg.tags[index]!.arrayIndex !== undefined, now), now, 'status');
          } catch (err) {
            // One value we cannot take must not drop the others of its publish response (they are flushed below).
            sink.degrade(index, `cannot map the value: ${(err as Error).message}`, 'value');
          }
        }
      }
      sink.flush();
    });
    on('status_changed', (status: { name: string; isGood(): boolean }) => {
      if (!status.isGood() && status.name !== 'GoodSubscriptionTransferred') onLost(`the server changed the subscription status to ${status.name}`);
    });
    on('terminated', () => {
      if (!this.#disposed) onLost('the subscription was terminated');
    });
    on('error', (err: Error) => onLost(`subscription error: ${err.message}`));
    on('internal_error', (err: Error) => this.#o.log.debug({ err }, 'subscription internal error'));
  }
}
