import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InferenceScheduler } from '../../../src/runtime/inference-scheduler.js';

/** A run() whose completion the test controls. */
function controlledRuns() {
  const started: number[] = [];
  const finishers: Array<() => void> = [];
  const run = (): Promise<void> => {
    started.push(Date.now());
    return new Promise<void>((resolve) => finishers.push(resolve));
  };
  const finish = async (): Promise<void> => {
    finishers.shift()?.();
    await vi.advanceTimersByTimeAsync(0);
  };
  return { started, run, finish };
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('InferenceScheduler', () => {
  it('runs every everyMs, counted from the latest start', async () => {
    const runs = controlledRuns();
    const s = new InferenceScheduler({ everyMs: 100, onNewData: false, tags: ['a'], run: runs.run, onBusy: () => {} });
    s.start();
    await vi.advanceTimersByTimeAsync(99);
    expect(runs.started).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs.started).toEqual([100]);
    await runs.finish();
    await vi.advanceTimersByTimeAsync(100);
    await runs.finish();
    await vi.advanceTimersByTimeAsync(100);
    expect(runs.started).toEqual([100, 200, 300]);
    await runs.finish();
    await s.stop();
  });

  it('keeps at most one inference in flight and folds triggers into one follow-up run', async () => {
    const runs = controlledRuns();
    let busy = 0;
    const s = new InferenceScheduler({ everyMs: 10_000, onNewData: false, tags: ['a'], run: runs.run, onBusy: () => busy++ });
    s.start();
    s.trigger();
    expect(runs.started).toHaveLength(1);
    expect(s.inFlight).toBe(true);
    s.trigger(); // queued
    s.trigger(); // dropped: one is already queued
    s.trigger(); // dropped
    expect(runs.started).toHaveLength(1);
    expect(busy).toBe(2);
    await runs.finish();
    expect(runs.started).toHaveLength(2); // the follow-up
    await runs.finish();
    expect(runs.started).toHaveLength(2);
    expect(s.inFlight).toBe(false);
    await s.stop();
  });

  it('onNewData: runs once every input tag has a new sample, out of the publisher call stack', async () => {
    const runs = controlledRuns();
    const s = new InferenceScheduler({ everyMs: 60_000, onNewData: true, tags: ['a', 'b'], run: runs.run, onBusy: () => {} });
    s.start();
    s.onSamples([{ tag: 'a' }, { tag: 'other' }]);
    s.onSamples([{ tag: 'a' }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(runs.started).toHaveLength(0);
    s.onSamples([{ tag: 'b' }]);
    expect(runs.started).toHaveLength(0); // deferred to the next turn
    await vi.advanceTimersByTimeAsync(0);
    expect(runs.started).toHaveLength(1);
    await runs.finish();
    s.onSamples([{ tag: 'b' }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(runs.started).toHaveLength(1); // a has nothing new yet
    await s.stop();
  });

  it('ignores samples when onNewData is off', async () => {
    const runs = controlledRuns();
    const s = new InferenceScheduler({ everyMs: 60_000, onNewData: false, tags: ['a'], run: runs.run, onBusy: () => {} });
    s.start();
    s.onSamples([{ tag: 'a' }]);
    await vi.advanceTimersByTimeAsync(10);
    expect(runs.started).toHaveLength(0);
    await s.stop();
  });

  it('stop() clears the timers, waits for the run in flight and starts nothing afterwards', async () => {
    const runs = controlledRuns();
    const s = new InferenceScheduler({ everyMs: 100, onNewData: true, tags: ['a'], run: runs.run, onBusy: () => {} });
    s.start();
    s.trigger();
    s.trigger();
    let stopped = false;
    const stopping = s.stop(5000).then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    await runs.finish();
    await stopping;
    expect(stopped).toBe(true);
    s.trigger();
    s.onSamples([{ tag: 'a' }]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.started).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
