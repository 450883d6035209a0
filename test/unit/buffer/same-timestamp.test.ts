import { afterEach, describe, expect, it } from 'vitest';
import { SampleBuffer } from '../../../src/buffer/sample-buffer.js';
import { bufferConfig, bufferContext, sample } from './buffer-context.js';

describe('two samples of one tag with the same source timestamp', () => {
  const ctx = bufferContext();
  afterEach(() => ctx.cleanup());

  it('the newest arrival is kept; an overwritten different sample is counted, an identical re-send is not', async () => {
    const buffer = new SampleBuffer(bufferConfig({ flushIntervalMs: 60_000 }), ctx);
    await buffer.start(new AbortController().signal);
    try {
      // 8 samples at 4 Hz from a device whose timestamps have whole seconds: two timestamps.
      const values = [1, 2, 3, 4, 5, 6, 7, 8];
      ctx.bus.publish(values.map((v, i) => sample('dev.x', 1000 * Math.floor(i / 4) + 1000, v)));
      // An OPC UA republish of the same sample changes nothing.
      ctx.bus.publish([sample('dev.x', 2000, 8)]);
      buffer.flush();
      expect(buffer.series('dev.x', 0, 10_000)).toEqual([{ ts: 1000, value: 4, valid: true }, { ts: 2000, value: 8, valid: true }]);
      const dropped = await ctx.metrics.getSingleMetric('lineguard_buffer_dropped_samples_total')!.get();
      expect(dropped.values.find((v) => v.labels.reason === 'same_timestamp')?.value).toBe(6);
    } finally {
      await buffer.stop();
    }
  });
});
