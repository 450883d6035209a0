import type { Logger } from 'pino';
import { Backoff } from '../core/backoff.js';
import type { ModelConfig } from './config.js';
import { LoadedModel, ModelLoadError } from './loaded-model.js';
import { ModelFileError, readModelFile } from './model-file.js';
import type { RuntimeMetrics } from './runtime-metrics.js';
import { engineCacheDir, modelCacheRoot, pruneEngineCaches } from './tensorrt-engine-cache.js';

/** A file that was read while it was still being written is read again after this long. */
const CHANGING_RETRY_MS = 500;

/** Why the model file could not be (re)loaded; `sha256` is set when the file was read. */
export interface LoadFailure {
  message: string;
  code: string;
  at: number;
  sha256?: string;
}

export interface ModelSlotOptions {
  cfg: ModelConfig;
  /** Absolute path of the model file. */
  path: string;
  stateDir: string;
  log: Logger;
  metrics: RuntimeMetrics;
}

/**
 * The live model of one ModelRunner and how it gets replaced. `reload()` reads the file and, when its content
 * differs from the live model, loads and warms the new version in its own worker beside the live one, then swaps
 * the reference: an inference that started on the old model finishes there, every later one runs on the new one,
 * and a model is never visible before it is fully loaded. A file that fails keeps the live model (the failure is
 * kept in `failure` for /healthz); failures that may pass (a provider, a crashed worker) are retried with backoff.
 */
export class ModelSlot {
  readonly #backoff = new Backoff({ initialMs: 1000, maxMs: 300_000 });
  readonly #abort = new AbortController();
  #model: LoadedModel | undefined;
  #failure: LoadFailure | undefined;
  #loading: Promise<void> | undefined;
  #reloadAgain = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /**
   * Models dropped after an inference hung, whose thread has not ended yet (it is inside ONNX Runtime and cannot be
   * killed, see InferenceWorker.terminate). No new model is loaded while one is stuck: a model that hangs on every
   * inference would otherwise leave one more thread, session and core behind at every reload.
   */
  readonly #stuck = new Set<LoadedModel>();
  #waitingForStuck = false;

  constructor(private readonly o: ModelSlotOptions) {}

  /** The live model, if any. */
  get model(): LoadedModel | undefined {
    return this.#model;
  }

  /** The last load failure, cleared by a successful load (or the file going back to the live version). */
  get failure(): LoadFailure | undefined {
    return this.#failure;
  }

  /** Loads the file if it differs from the live model; `retry` also retries a file that failed before. */
  reload(retry = false): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#loading) {
      this.#reloadAgain = true;
      return this.#loading;
    }
    this.#loading = (async () => {
      let again = retry;
      do {
        this.#reloadAgain = false;
        await this.#reloadOnce(again);
        again = false;
      } while (this.#reloadAgain && !this.#stopped);
    })().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  /** The live model stopped working (its worker died or hung): drop it and load the file again. */
  modelFailed(model: LoadedModel, err: Error): void {
    if (this.#stopped || this.#model !== model) return;
    this.#model = undefined;
    this.#failure = { message: `the model stopped working: ${err.message}`, code: 'worker', at: Date.now() };
    this.o.log.error({ err, version: model.file.version }, 'model stopped working; reloading it');
    this.#stuck.add(model);
    void model.ended.then(() => this.#stuck.delete(model));
    void model.dispose(100);
    this.#scheduleRetry(this.#backoff.next(), true);
  }

  /** Cancels loads and retries and ends the live model's worker (bounded). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    const model = this.#model;
    this.#model = undefined;
    await Promise.all([model?.dispose(1000), this.#loading && Promise.race([this.#loading, delay(2000)])]);
  }

  async #reloadOnce(retry: boolean): Promise<void> {
    const { cfg, log: baseLog, metrics } = this.o;
    if (this.#stuck.size > 0) {
      this.#waitForStuck();
      return;
    }
    let file;
    try {
      file = await readModelFile(this.o.path);
    } catch (err) {
      if (err instanceof ModelFileError && err.code === 'changing') {
        this.#scheduleRetry(CHANGING_RETRY_MS, false);
        return;
      }
      this.#failed(err as Error, undefined, err instanceof ModelFileError && err.code === 'unreadable');
      return;
    }
    const current = this.#model;
    if (current && file.sha256 === current.file.sha256) {
      // Unchanged content (a touch, or the bad file was replaced by the running version again).
      if (this.#failure) baseLog.info({ version: current.file.version }, 'model file is back to the running version');
      this.#failure = undefined;
      return;
    }
    if (!retry && current && file.sha256 === this.#failure?.sha256) return;
    const log = baseLog.child({ file: this.o.path, version: file.version });
    log.info(current ? 'model file changed: loading the new version beside the running one' : 'loading model');
    try {
      // The worker can die only after load() returned, so the callback finds the model it belongs to here.
      const holder: { model?: LoadedModel } = {};
      const next = await LoadedModel.load(cfg, file, {
        stateDir: this.o.stateDir,
        log,
        signal: this.#abort.signal,
        onWorkerExit: (err) => {
          if (holder.model) this.modelFailed(holder.model, err);
        },
      });
      holder.model = next;
      if (this.#stopped) {
        await next.dispose();
        return;
      }
      const previous = this.#model;
      // The swap: from here on every inference starts on the new model; the one in flight finishes on the old.
      this.#model = next;
      this.#failure = undefined;
      this.#backoff.reset();
      metrics.load('ok');
      metrics.provider(next.provider);
      log.info(
        {
          provider: next.provider, nodes: next.providerNodes, fallbacks: next.fallbacks, loadMs: round(next.loadMs),
          warmupMs: next.warmupMs.map(round), normalisation: next.io.normalisationNote, previous: previous?.file.version,
        },
        previous ? `model swapped to ${file.version} on ${next.provider}` : `model live on ${next.provider}`,
      );
      if (next.provider === 'tensorrt' && cfg.tensorrt.engineCache) {
        const keep = engineCacheDir(this.o.stateDir, cfg.name, file.sha256);
        const removed = await pruneEngineCaches(modelCacheRoot(this.o.stateDir, cfg.name), keep);
        if (removed.length > 0) log.info({ removed }, 'removed the TensorRT engine caches of other model versions');
      }
      if (previous) await previous.dispose();
    } catch (err) {
      this.#failed(err as Error, file.sha256, !(err instanceof ModelLoadError) || err.transient);
    }
  }

  /** Says why nothing is loaded, and loads again once the stuck threads have ended. */
  #waitForStuck(): void {
    const versions = [...this.#stuck].map((m) => m.file.version).join(', ');
    this.#failure = {
      message: `an inference of version ${versions} hung past schedule.timeoutMs and its thread is still inside ONNX Runtime; ` +
        'the model is loaded again when it returns (if it never does, the GPU or its driver hangs: restart the gateway)',
      code: 'stuck',
      at: Date.now(),
    };
    if (this.#waitingForStuck) return;
    this.#waitingForStuck = true;
    this.o.log.warn({ versions }, 'waiting for a hung inference thread to end before loading the model again');
    void Promise.all([...this.#stuck].map((m) => m.ended)).then(() => {
      this.#waitingForStuck = false;
      void this.reload(true);
    });
  }

  #failed(err: Error, sha256: string | undefined, transient: boolean): void {
    if (this.#stopped) return;
    const code = err instanceof ModelFileError || err instanceof ModelLoadError ? err.code : 'load';
    this.#failure = { message: err.message, code, at: Date.now(), ...(sha256 ? { sha256 } : {}) };
    this.o.metrics.load('failed');
    const serving = this.#model ? `; still serving version ${this.#model.file.version}` : '';
    this.o.log.error({ err, code, file: this.o.path }, `model cannot be loaded${serving}`);
    // A bad file stays bad until it changes (the watcher notices); anything else may pass, so it is retried.
    // Without a watcher, a model that is not running is retried whatever the reason.
    if (transient || (!this.#model && !this.o.cfg.watch)) this.#scheduleRetry(this.#backoff.next(), true);
  }

  #scheduleRetry(ms: number, retry: boolean): void {
    if (this.#stopped) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.reload(retry);
    }, ms);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
