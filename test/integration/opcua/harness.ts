/** Shared pieces of the OPC UA integration tests: a component context, a bus recorder, config builders. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import type { ComponentContext } from '../../../src/core/component.js';
import type { CliIo } from '../../../src/core/cli-command.js';
import { TagBus } from '../../../src/core/tag-bus.js';
import type { TagSample } from '../../../src/core/tag-sample.js';
import type { OpcuaServerConfig, OpcuaTagConfig } from '../../../src/connectors/opcua/config.js';

/** Log lines as parsed JSON objects, for assertions on what was logged (and what was not). */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  readonly logger: Logger;

  constructor() {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line) continue;
          this.raw.push(line);
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        }
        done();
      },
    });
    this.logger = pino({ level: 'debug' }, sink);
  }

  messages(level?: number): string[] {
    return this.lines.filter((l) => level === undefined || l.level === level).map((l) => String(l.msg));
  }
}

export interface TestContext {
  ctx: ComponentContext;
  bus: TagBus;
  registry: Registry;
  logs: LogCapture;
  stateDir: string;
  samples: TagSample[];
  cleanup(): void;
}

export function makeContext(name = 'plc'): TestContext {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'lineguard-opcua-state-'));
  const bus = new TagBus();
  const registry = new Registry();
  const logs = new LogCapture();
  const samples: TagSample[] = [];
  bus.subscribe((batch) => samples.push(...batch));
  return {
    ctx: { log: logs.logger.child({ component: 'opcua', instance: name }), metrics: registry, bus, gatewayId: 'test-gw', stateDir },
    bus, registry, logs, stateDir, samples,
    cleanup: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}

/** A server config with the schema's defaults, as the loader would hand it over; `overrides` win. */
export function serverConfig(endpoint: string, tags: Array<Partial<OpcuaTagConfig> & Pick<OpcuaTagConfig, 'tag' | 'nodeId'>>, overrides: Partial<OpcuaServerConfig> = {}): OpcuaServerConfig {
  return {
    name: 'plc',
    endpoint,
    security: { mode: 'None', trustOnFirstUse: false },
    auth: { type: 'anonymous' },
    clock: { timestamps: 'source', maxSkewMs: 86_400_000, stepThresholdMs: 300_000 },
    publishingIntervalMs: 100,
    sessionTimeoutMs: 20000,
    keepAliveCount: 10,
    silenceTimeoutIntervals: 3,
    requestTimeoutMs: 5000,
    maxItemsPerCall: 1000,
    retryDegradedMs: 1000,
    perTagAgeMetric: true,
    reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
    ...overrides,
    tags: tags.map((t) => ({ mode: 'subscribe', samplingIntervalMs: 50, queueSize: 10, ...t }) as OpcuaTagConfig),
  };
}

/** Polls `predicate` until it holds or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** CliIo that keeps what a command printed. */
export function captureIo(log: Logger): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l), log };
}

/** Value of one metric series (undefined when the series does not exist). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const data = await metric.get();
  const series = data.values.find((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val));
  return series?.value;
}
