/**
 * MQTT in both directions: device data in (MqttSource: JSON, Sparkplug B) and alerts out (MqttAlertSink:
 * outbox drain, gateway status). See README.md in this folder.
 */
export { MqttSource } from './mqtt-source.js';
export { MqttAlertSink } from './alert-sink.js';
export {
  checkMqttConfig,
  MqttConfigSchema,
  type MqttAlertSinkConfig,
  type MqttBrokerConfig,
  type MqttConfig,
  type MqttSourceConfig,
} from './config.js';
export type { GatewayStatus } from './gateway-status.js';
