import type { Config } from './schema.js';

/** One line for check-config: what the gateway would run. */
export function summarizeConfig(config: Config): string {
  const opcuaTags = config.opcua.reduce((n, s) => n + s.tags.length, 0);
  const mqttValues = config.mqtt.sources.reduce((n, s) => n + (s.values?.length ?? 0), 0);
  const sources = config.opcua.length + config.mqtt.sources.length;
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return [
    `gateway ${config.gateway.id}`,
    `${plural(sources, 'source')} (${config.opcua.length} OPC UA, ${config.mqtt.sources.length} MQTT)`,
    `${plural(opcuaTags, 'OPC UA tag')}${mqttValues ? ` + ${plural(mqttValues, 'MQTT value mapping')}` : ''}`,
    plural(config.models.length, 'model'),
    config.mqtt.alerts ? `alerts to ${config.mqtt.alerts.broker}` : 'no alert sink',
  ].join(', ');
}
