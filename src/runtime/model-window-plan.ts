import type { ModelConfig } from './config.js';
import type { AssemblyPlan } from './window-assembly.js';

/** Default hold: this many sampling intervals of the tag, within [MIN, MAX]; MQTT tags (no interval known) get DEFAULT. */
const HOLD_INTERVALS = 3_600;
const MIN_HOLD_MS = 60_000;
const MAX_HOLD_MS = 86_400_000;
const DEFAULT_HOLD_MS = 3_600_000;

/** The default hold of a tag: 3,600 of its sampling intervals, within 1 min .. 24 h; 1 h when the interval is unknown. */
export function defaultHoldMs(intervalMs: number | undefined): number {
  if (intervalMs === undefined || !(intervalMs > 0)) return DEFAULT_HOLD_MS;
  return Math.min(MAX_HOLD_MS, Math.max(MIN_HOLD_MS, HOLD_INTERVALS * intervalMs));
}

/**
 * The assembly plan of a model's windows, from its config: what live inference (ModelRunner) and the backtest both
 * hand to assembleWindow, so they cannot disagree on the hold of a tag.
 */
export function modelAssemblyPlan(cfg: Pick<ModelConfig, 'inputs' | 'window'>, tagIntervalMs?: (tag: string) => number | undefined): AssemblyPlan {
  return {
    tags: cfg.inputs, samples: cfg.window.samples, periodMs: cfg.window.periodMs,
    maxHoldMs: cfg.inputs.map((tag) => cfg.window.maxHoldMs ?? defaultHoldMs(tagIntervalMs?.(tag))),
  };
}
