/**
 * Inference worker thread: holds one ONNX Runtime session and runs it off the main event loop (`session.run` is
 * synchronous on its thread: a batch of conv-autoencoder windows blocked the loop 4–15 ms when run on the main
 * thread).
 *
 * Node 20 runs a worker entry only as plain JavaScript, so this file is loaded from its compiled form
 * (dist/src/runtime/inference-worker.js, see inference-worker-client.ts). Requests are handled one at a time in
 * arrival order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import type { LoadResult, RunResult, WarmupResult, WorkerInit, WorkerRequest, WorkerResponse } from './inference-protocol.js';
import {
  createSession, ortErrorMessage, readProfile, runSession, SessionCreateError, valueInfos, type CreatedSession,
} from './session-factory.js';

const init = workerData as WorkerInit;
ort.env.logLevel = init.ortLogLevel;

let created: CreatedSession | undefined;
let queue: Promise<void> = Promise.resolve();

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.type) {
    case 'load': {
      if (created) throw new Error('this worker already holds a session');
      try {
        created = await createSession(request.bytes, request.session, true);
      } catch (err) {
        if (!(err instanceof SessionCreateError)) throw err;
        const none: LoadResult = { provider: null, failed: err.failed, inputs: [], outputs: [], createMs: 0 };
        return none;
      }
      const result: LoadResult = {
        provider: created.provider,
        failed: created.failed,
        inputs: valueInfos(created.session.inputMetadata),
        outputs: valueInfos(created.session.outputMetadata),
        createMs: created.createMs,
        ...(created.engineCache ? { engineCache: created.engineCache } : {}),
      };
      return result;
    }
    case 'warmup': {
      const session = requireSession();
      const runMs: number[] = [];
      let outputs = {};
      let nodeCounts = {};
      let profileError: string | undefined;
      for (let i = 0; i < Math.max(1, request.runs); i++) {
        const t0 = performance.now();
        outputs = await runSession(session.session, request.input, request.dims);
        runMs.push(performance.now() - t0);
        if (i === 0) {
          try {
            nodeCounts = await readProfile(session);
          } catch (err) {
            profileError = ortErrorMessage(err);
          }
        }
      }
      const result: WarmupResult = { nodeCounts, runMs, outputs, ...(profileError ? { profileError } : {}) };
      return result;
    }
    case 'run': {
      const session = requireSession();
      const t0 = performance.now();
      const outputs = await runSession(session.session, request.input, request.dims);
      const result: RunResult = { outputs, runMs: performance.now() - t0 };
      return result;
    }
    case 'dispose': {
      const session = created;
      created = undefined;
      await session?.session.release();
      return null;
    }
  }
}

function requireSession(): CreatedSession {
  if (!created) throw new Error('no session loaded in this worker');
  return created;
}

parentPort?.on('message', (request: WorkerRequest) => {
  queue = queue.then(async () => {
    let response: WorkerResponse;
    try {
      response = { id: request.id, ok: true, result: await handle(request) };
    } catch (err) {
      response = { id: request.id, ok: false, error: ortErrorMessage(err) };
    }
    parentPort?.postMessage(response, transferables(response));
    // The thread ends itself once its session is released. The main thread never calls worker.terminate():
    // terminating a thread while ONNX Runtime is inside a native call makes the binding throw a C++ Napi::Error
    // on return, which aborts the whole process ("terminate called after throwing an instance of 'Napi::Error'").
    if (request.type === 'dispose') parentPort?.close();
  });
});

/** Output buffers are moved, not copied, to the main thread. */
function transferables(response: WorkerResponse): ArrayBuffer[] {
  if (!response.ok || !response.result || typeof response.result !== 'object') return [];
  const outputs = (response.result as { outputs?: unknown }).outputs;
  if (!outputs || typeof outputs !== 'object' || Array.isArray(outputs)) return [];
  return Object.values(outputs as Record<string, { data?: unknown }>)
    .map((o) => o.data)
    .filter((data): data is Float64Array => data instanceof Float64Array)
    .map((data) => data.buffer as ArrayBuffer);
}
