import { Value } from '@sinclair/typebox/value';
import { BufferConfigSchema, type BufferConfig } from '../../../src/buffer/config.js';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import type { AlertEvent } from '../../../src/core/alert.js';
import type { ModelConfig } from '../../../src/runtime/config.js';
import { ModelRunner, type InferenceRecord, type ModelRunnerDeps } from '../../../src/runtime/index.js';
import { runtimeContext, sample } from '../../unit/runtime/runtime-context.js';

/**
 * A real SampleBuffer (SQLite in a temp state dir, its durable outbox) and ModelRunners over it, as the daemon
 * wires them.
 */
export class RuntimeHarness {
  readonly ctx = runtimeContext();
  readonly records: InferenceRecord[] = [];
  readonly runners: ModelRunner[] = [];
  buffer!: SampleBuffer;

  async start(buffer: Partial<BufferConfig> = {}): Promise<this> {
    this.buffer = new SampleBuffer(Value.Default(BufferConfigSchema, { flushIntervalMs: 50, ...buffer }) as BufferConfig, this.ctx);
    await this.buffer.start(new AbortController().signal);
    return this;
  }

  /** Creates and starts a runner; `deps` may replace the outbox or the base directory. */
  async runner(cfg: ModelConfig, deps: Partial<ModelRunnerDeps> = {}): Promise<ModelRunner> {
    const runner = new ModelRunner(cfg, this.ctx, {
      windows: this.buffer,
      outbox: this.buffer.outbox,
      baseDir: this.ctx.stateDir,
      onInference: (r) => this.records.push(r),
      ...deps,
    });
    this.runners.push(runner);
    await runner.start(new AbortController().signal);
    return runner;
  }

  /** Publishes one row: each tag gets `values[i]` at `ts`. */
  publish(ts: number, tags: readonly string[], values: readonly number[]): void {
    this.ctx.bus.publish(tags.map((tag, i) => sample(tag, ts, values[i]!)));
  }

  /** Alerts waiting in the outbox, oldest first. */
  alerts(): AlertEvent[] {
    return this.buffer.outbox.peek(10_000).map((e) => e.alert);
  }

  async stop(): Promise<void> {
    for (const r of this.runners.splice(0)) await r.stop();
    await this.buffer?.stop();
    this.ctx.cleanup();
  }
}
