import type { Config } from './config/schema.js';

/**
 * A tag's sampling interval from its OPC UA server's config (subscribe: the larger of the sampling and publishing
 * intervals; poll: the poll interval). The default hold of its value in model windows follows from it, in the
 * daemon's model runners and in `lineguard backtest` alike. MQTT tags have none.
 */
export function tagSamplingIntervals(config: Pick<Config, 'opcua'>): Map<string, number> {
  const intervals = new Map<string, number>();
  for (const server of config.opcua) {
    for (const tag of server.tags) {
      const interval = tag.mode === 'poll' ? (tag.pollIntervalMs ?? tag.samplingIntervalMs) : Math.max(tag.samplingIntervalMs, server.publishingIntervalMs);
      intervals.set(tag.tag, interval);
    }
  }
  return intervals;
}
