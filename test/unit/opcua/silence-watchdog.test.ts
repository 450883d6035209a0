import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SilenceWatchdog } from '../../../src/connectors/opcua/silence-watchdog.js';

describe('SilenceWatchdog', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fires once when nothing was heard for the timeout, not while touched', () => {
    const fired: number[] = [];
    const dog = new SilenceWatchdog(3000, (ms) => fired.push(ms));
    dog.start();
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(1000);
      dog.touch();
    }
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(2999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(800);
    expect(fired).toHaveLength(1);
    expect(fired[0]).toBeGreaterThanOrEqual(3000);
    vi.advanceTimersByTime(10_000);
    expect(fired).toHaveLength(1);
  });

  it('holds no timer after stop', () => {
    const dog = new SilenceWatchdog(1000, () => undefined);
    dog.start();
    expect(vi.getTimerCount()).toBe(1);
    dog.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
