import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type {
  LoadResult, RunResult, SessionRequest, WarmupResult, WorkerInit, WorkerRequest, WorkerResponse,
} from './inference-protocol.js';

/**
 * Where the worker entry is. Node 20 cannot run a TypeScript worker entry, so the compiled file is used: next to
 * this module when it runs from dist/, or dist/src/runtime/ when this module runs from src/ under vitest (which is
 * why `npm test` builds first; run `npm run build` after changing src/runtime before running the tests alone).
 */
export function inferenceWorkerPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return fileURLToPath(new URL('./inference-worker.js', import.meta.url));
  const at = here.lastIndexOf('/src/runtime/');
  if (at < 0) throw new Error(`cannot locate the compiled inference worker from ${here}`);
  const compiled = `${here.slice(0, at)}/dist/src/runtime/inference-worker.js`;
  assertFresh(compiled, dirname(here));
  return compiled;
}

/** The sources the worker is compiled from: running tests against an older build would test old code. */
const WORKER_SOURCES = ['inference-worker.ts', 'inference-protocol.ts', 'session-factory.ts', 'provider-profile.ts'];

function assertFresh(compiled: string, srcDir: string): void {
  if (!existsSync(compiled)) return;
  const built = statSync(compiled).mtimeMs;
  const newer = WORKER_SOURCES.filter((f) => existsSync(join(srcDir, f)) && statSync(join(srcDir, f)).mtimeMs > built);
  if (newer.length > 0) throw new Error(`${compiled} is older than src/runtime/${newer.join(', ')}: run \`npm run build\``);
}

type Pending = { resolve: (value: unknown) => void; reject: (err: Error) => void };

/**
 * The main-thread handle of one inference worker thread (one session). Requests are answered in order; when the
 * thread dies every pending request is rejected and `onExit` is called (unless `terminate` was called first).
 */
export class InferenceWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #exited: Error | undefined;
  #terminating = false;
  #abandoned = false;
  /** Resolves when the thread has ended (on its own, after a dispose, or after a native call it was stuck in returned). */
  readonly ended: Promise<void>;

  private constructor(worker: Worker, onExit: (err: Error) => void) {
    this.#worker = worker;
    this.ended = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (response: WorkerResponse) => {
      const pending = this.#pending.get(response.id);
      if (!pending) return;
      this.#pending.delete(response.id);
      if (response.ok) pending.resolve(response.result);
      else pending.reject(new Error(response.error));
    });
    worker.on('error', (err) => {
      this.#fail(new Error(`inference worker failed: ${err.message}`));
    });
    worker.on('exit', (code) => {
      const err = new Error(`inference worker exited with code ${code}`);
      this.#fail(err);
      if (!this.#terminating) onExit(err);
    });
  }

  /** Starts a worker thread. Throws if the compiled worker file is missing (run `npm run build`). */
  /**
   * ONNX Runtime's process-wide logger writes straight to stderr, outside pino: at 'error' it prints a red
   * "Failed to load library" for every GPU provider probed on a box without one, although falling back is the
   * expected path. 'fatal' keeps stderr clean; each failure's reason still comes back in the exception, which the
   * runner logs and shows in /healthz.
   */
  static spawn(onExit: (err: Error) => void, init: WorkerInit = { ortLogLevel: 'fatal' }): InferenceWorker {
    const path = inferenceWorkerPath();
    if (!existsSync(path)) throw new Error(`inference worker ${path} is missing: run \`npm run build\``);
    return new InferenceWorker(new Worker(path, { workerData: init, stdout: false, stderr: false }), onExit);
  }

  load(bytes: Uint8Array, session: SessionRequest): Promise<LoadResult> {
    // A copy is transferred: the caller keeps its bytes (to hash, to retry).
    const copy = bytes.slice();
    return this.#request({ type: 'load', bytes: copy, session }, [copy.buffer as ArrayBuffer]) as Promise<LoadResult>;
  }

  warmup(input: Float32Array, dims: number[], runs: number): Promise<WarmupResult> {
    return this.#request({ type: 'warmup', input, dims, runs }) as Promise<WarmupResult>;
  }

  /** Runs one inference; `input` is moved to the worker (do not reuse it). */
  run(input: Float32Array, dims: number[]): Promise<RunResult> {
    return this.#request({ type: 'run', input, dims }, [input.buffer as ArrayBuffer]) as Promise<RunResult>;
  }

  /**
   * Releases the session and lets the thread end itself. Idempotent; resolves within `timeoutMs`.
   *
   * The thread is never killed with `worker.terminate()`: when that lands while ONNX Runtime is inside a native
   * call (an inference, a session creation), the binding throws a C++ exception on return and the whole process
   * aborts. A thread that does not end in time (an inference that hangs) is unref'd and abandoned instead: its
   * queued dispose runs when the native call returns, and the thread then exits on its own.
   */
  async terminate(timeoutMs = 2000): Promise<void> {
    if (this.#terminating) return;
    this.#terminating = true;
    if (!this.#exited) {
      this.#request({ type: 'dispose' }).catch(() => undefined);
      await Promise.race([this.ended, delay(timeoutMs)]);
      if (!this.#exited) {
        this.#abandoned = true;
        this.#worker.unref();
      }
    }
    this.#fail(new Error('inference worker terminated'));
  }

  /** True when terminate() gave up waiting for a thread stuck in native code (it ends when the call returns). */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  get alive(): boolean {
    return !this.#exited && !this.#terminating;
  }

  #request(body: DistributiveOmit<WorkerRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...body, id }, transfer);
    });
  }

  #fail(err: Error): void {
    this.#exited ??= err;
    for (const pending of this.#pending.values()) pending.reject(err);
    this.#pending.clear();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
