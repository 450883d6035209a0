import type { Registry } from 'prom-client';
import { gauge } from '../core/metrics.js';
import type { SourceClocks } from '../core/source-clock.js';

/**
 * Exports every source's clock as metrics, read at scrape time (no timer): the measured offset, the steps seen and
 * the samples the policy restamped. Counters are exported as gauges of running totals because the clocks own them.
 */
export function registerSourceClockMetrics(registry: Registry, clocks: SourceClocks): void {
  const offset = gauge(registry, {
    name: 'lineguard_source_clock_offset_seconds',
    help: 'Receive time minus source time of the freshest recent samples of each source (positive: the source clock is behind, or delivery delay).',
    labelNames: ['source'],
  });
  const steps = gauge(registry, {
    name: 'lineguard_source_clock_steps_total', help: 'Clock steps detected per source since the gateway started.', labelNames: ['source'],
  });
  const restamped = gauge(registry, {
    name: 'lineguard_source_clock_restamped_total',
    help: 'Samples restamped by the clock policy per source and reason (future: stamped beyond clock.maxSkewMs ahead).',
    labelNames: ['source', 'reason'],
  });
  const collect = (): void => {
    for (const state of clocks.states()) {
      if (state.offsetMs !== null) offset.set({ source: state.source }, state.offsetMs / 1000);
      steps.set({ source: state.source }, state.steps);
      restamped.set({ source: state.source, reason: 'future' }, state.future);
    }
  };
  // prom-client calls `collect` of a metric before it is serialised; one hook is enough for the three.
  (offset as unknown as { collect?: () => void }).collect = collect;
}
