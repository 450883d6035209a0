import type { TagSample } from './tag-sample.js';

export type TagBatchListener = (samples: readonly TagSample[]) => void;

/**
 * The in-process bus from sources to consumers (buffer, runtime). Batches keep the per-sample cost low:
 * a source publishes what one notification or message carried.
 *
 * A listener that throws is isolated: the error goes to `onListenerError` and the other listeners still run,
 * so one broken consumer cannot stop ingestion.
 */
export class TagBus {
  readonly #listeners = new Set<TagBatchListener>();
  #published = 0;

  /**
   * @param prepare runs on every batch before any listener sees it (the daemon's clock stage: source-time policy,
   *   receive time); it may rewrite samples in place and must not throw.
   */
  constructor(
    private readonly onListenerError: (err: unknown) => void = () => {},
    private readonly prepare?: (samples: readonly TagSample[]) => void,
  ) {}

  /** Registers a listener; returns the function that removes it (components call it on stop). */
  subscribe(listener: TagBatchListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  publish(samples: readonly TagSample[]): void {
    if (samples.length === 0) return;
    this.#published += samples.length;
    if (this.prepare) {
      try {
        this.prepare(samples);
      } catch (err) {
        this.onListenerError(err);
      }
    }
    for (const listener of this.#listeners) {
      try {
        listener(samples);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Total samples published since start. */
  get publishedCount(): number {
    return this.#published;
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
