import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { BufferConfig } from '../../../src/buffer/config.js';
import type { ComponentContext } from '../../../src/core/component.js';
import { TagBus } from '../../../src/core/tag-bus.js';
import type { Quality, TagSample, TagValue } from '../../../src/core/tag-sample.js';

/** A buffer config with the schema defaults, changed by `overrides` (nested sections merged). */
export function bufferConfig(overrides: Partial<BufferConfig> = {}): BufferConfig {
  return {
    file: 'lineguard.db',
    flushIntervalMs: 250,
    flushMaxRows: 20_000,
    memoryMaxSamples: 200_000,
    durability: 'normal',
    ...overrides,
    retention: { maxAge: '7d', maxSize: '2GB', ...overrides.retention },
    outbox: { maxAlerts: 100_000, maxSize: '256MB', reserveAlerts: 2000, ...overrides.outbox },
  };
}

/** A real component context over a fresh temp state directory; `cleanup()` removes it. */
export function bufferContext(): ComponentContext & { cleanup(): void; bus: TagBus; metrics: Registry } {
  const stateDir = mkdtempSync(join(tmpdir(), 'lg-buffer-'));
  return {
    log: pino({ level: process.env.LOG_LEVEL ?? 'silent' }),
    metrics: new Registry(),
    bus: new TagBus(),
    gatewayId: 'gw-test',
    stateDir,
    cleanup: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}

export function sample(tag: string, ts: number, value: TagValue, quality: Quality = 'good', statusCode?: number): TagSample {
  return { tag, ts, value, quality, source: 'test/src', ...(statusCode !== undefined ? { statusCode } : {}) };
}
