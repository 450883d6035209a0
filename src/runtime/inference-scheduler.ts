export interface SchedulerOptions {
  /** An inference starts at most this long after the previous one started. */
  everyMs: number;
  /** Also start one as soon as every input tag has published a new sample (fed through `onSamples`). */
  onNewData: boolean;
  tags: readonly string[];
  /** One inference; must not reject (the runner handles its errors). */
  run: () => Promise<void>;
  /** A trigger was dropped: one inference is running and another is already queued behind it. */
  onBusy: () => void;
}

/**
 * Decides when a model runs: a timer (at least every `everyMs`) and, optionally, the arrival of new data on the
 * bus. At most one inference is in flight; triggers that arrive meanwhile are folded into one follow-up run, so a
 * model slower than its data runs back to back and counts the dropped triggers instead of queueing without bound.
 * `onSamples` only records tag names and at most starts an inference whose work runs in a worker thread:
 * ingestion never waits for a model.
 */
export class InferenceScheduler {
  readonly #tags: Set<string>;
  readonly #seen = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #deferred: NodeJS.Immediate | undefined;
  #running: Promise<void> | undefined;
  #queued = false;
  #stopped = true;

  constructor(private readonly options: SchedulerOptions) {
    this.#tags = new Set(options.tags);
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#arm();
  }

  /** Requests an inference now (or right after the one in flight). */
  trigger(): void {
    if (this.#stopped) return;
    if (this.#running) {
      if (this.#queued) this.options.onBusy();
      this.#queued = true;
      return;
    }
    this.#runNow();
  }

  /** Stops triggering and waits (at most `timeoutMs`) for the inference in flight. */
  async stop(timeoutMs = 3000): Promise<void> {
    this.#stopped = true;
    this.#queued = false;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#deferred) clearImmediate(this.#deferred);
    this.#timer = undefined;
    this.#deferred = undefined;
    const running = this.#running;
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([running, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  get inFlight(): boolean {
    return this.#running !== undefined;
  }

  /** Bus samples (the caller's listener): with `onNewData`, starts an inference once every input tag has a new one. */
  onSamples(samples: readonly { tag: string }[]): void {
    if (!this.options.onNewData || this.#stopped) return;
    for (const sample of samples) if (this.#tags.has(sample.tag)) this.#seen.add(sample.tag);
    if (this.#seen.size === this.#tags.size) {
      this.#seen.clear();
      if (this.#deferred) return;
      // Out of the publisher's call stack: the window read and the other bus listeners do not wait for each other.
      this.#deferred = setImmediate(() => {
        this.#deferred = undefined;
        this.trigger();
      });
    }
  }

  #runNow(): void {
    this.#arm();
    this.#running = this.options.run().finally(() => {
      this.#running = undefined;
      if (this.#queued && !this.#stopped) {
        this.#queued = false;
        // Next turn of the event loop: samples that arrived meanwhile reach the buffer first.
        setImmediate(() => {
          if (!this.#stopped && !this.#running) this.#runNow();
        });
      }
    });
  }

  /** (Re)starts the periodic timer from now: `everyMs` after the latest start. */
  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.trigger();
    }, this.options.everyMs);
  }
}
