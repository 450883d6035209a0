import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { ComponentContext } from '../../../src/core/component.js';
import { SourceClocks } from '../../../src/core/source-clock.js';
import { TagBus } from '../../../src/core/tag-bus.js';
import type { Quality, TagSample, TagValue } from '../../../src/core/tag-sample.js';
import { ModelConfigSchema, type ModelConfig } from '../../../src/runtime/config.js';

/** test/fixtures/models, where make-fixtures.py writes the ONNX fixtures. */
export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/models');
/** The repository root (the shipped models live under models/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export function fixture(name: string): string {
  return join(FIXTURES, name);
}

/** One JSON log line as pino wrote it. */
export type LogLine = { level: number; msg: string; [key: string]: unknown };

/** A real component context over a fresh temp state directory, with the log lines kept in `logs`. */
export function runtimeContext(): ComponentContext & { cleanup(): void; bus: TagBus; metrics: Registry; logs: LogLine[]; clocks: SourceClocks } {
  const stateDir = mkdtempSync(join(tmpdir(), 'lg-runtime-'));
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, {
    write(line: string) {
      logs.push(JSON.parse(line) as LogLine);
      if (process.env.LOG_LEVEL) process.stderr.write(line);
    },
  });
  // As the daemon wires it: every batch goes through the sources' clocks before any listener sees it.
  const clocks = new SourceClocks();
  return {
    log,
    logs,
    metrics: new Registry(),
    clocks,
    bus: new TagBus(undefined, clocks.stamp),
    gatewayId: 'gw-test',
    stateDir,
    cleanup: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}

type DeepPartial<T> = {
  [K in keyof T]?: NonNullable<T[K]> extends Array<infer U>
    ? (U extends object ? Array<DeepPartial<U>> : T[K])
    : NonNullable<T[K]> extends object ? DeepPartial<NonNullable<T[K]>> : T[K];
};

/**
 * A model config for the last-value fixture (window 4 × tags a, b) with the schema defaults filled in, as the
 * daemon's loader would hand it over, changed by `overrides`. Fails when the result does not pass the schema.
 */
export function modelConfig(overrides: DeepPartial<ModelConfig> = {}): ModelConfig {
  const base = {
    name: 'press1',
    file: fixture('last-value.onnx'),
    asset: 'line-1/press-1',
    inputs: ['press1.a', 'press1.b'],
    window: { samples: 4 },
    schedule: { everyMs: 60_000 },
    alert: { raiseAbove: 0.8, clearBelow: 0.5 },
  };
  const merged = {
    ...base,
    ...overrides,
    window: { ...base.window, ...overrides.window },
    schedule: { ...base.schedule, ...overrides.schedule },
    ...(overrides.alerts ? { alert: undefined } : { alert: { ...base.alert, ...overrides.alert } }),
    ...(overrides.tensorrt ? { tensorrt: overrides.tensorrt } : {}),
  };
  if (merged.alert === undefined) delete (merged as { alert?: unknown }).alert;
  const cfg = Value.Default(ModelConfigSchema, structuredClone(merged)) as ModelConfig;
  if (!Value.Check(ModelConfigSchema, cfg)) {
    throw new Error(`test config does not pass the schema: ${[...Value.Errors(ModelConfigSchema, cfg)].map((e) => `${e.path} ${e.message}`).join('; ')}`);
  }
  return cfg;
}

export function sample(tag: string, ts: number, value: TagValue, quality: Quality = 'good'): TagSample {
  return { tag, ts, value, quality, source: 'test/src' };
}

/** Waits until `check` returns true (polling), failing after `ms` with `what`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The value of a metric sample, or undefined. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const data = await metric.get();
  const match = data.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return match?.value;
}
