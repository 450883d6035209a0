/**
 * The one value type that flows from every source through the gateway.
 *
 * Sources (OPC UA, MQTT) produce TagSamples; the buffer stores them; the runtime reads windows of them.
 */

/** Quality of a sample, after the OPC UA StatusCode severity bits (good / uncertain / bad). */
export type Quality = 'good' | 'uncertain' | 'bad';

/** Scalar values the gateway carries. Arrays and structures are mapped to scalars by the source's config. */
export type TagValue = number | boolean | string;

export interface TagSample {
  /** Tag name as configured (e.g. `press1.torque`), unique across the gateway. */
  tag: string;
  value: TagValue;
  /**
   * Source timestamp in epoch milliseconds (the PLC's or device's time, not arrival time), after the source's clock
   * policy (src/core/source-clock.ts) was applied on the tag bus.
   */
  ts: number;
  /** Gateway wall-clock time the sample arrived, epoch ms; set by the clock stage of the tag bus. */
  receivedAt?: number;
  /**
   * `gateway`: `ts` is the gateway's wall clock (a marker the connector made, e.g. "connection lost"); the clock
   * stage maps it onto the source's timeline and removes this field.
   */
  timeBase?: 'gateway';
  quality: Quality;
  /** Original status code (OPC UA StatusCode value), when the source has one. */
  statusCode?: number;
  /** Name of the original status code, e.g. `BadSensorFailure`. */
  statusName?: string;
  /** Name of the source instance that produced the sample (`opcua/plc1`, `mqtt/devices`). */
  source: string;
}

/** Maps an OPC UA style 32-bit status code to a quality by its two severity bits. */
export function qualityOfStatusCode(code: number): Quality {
  const severity = (code >>> 30) & 0b11;
  if (severity === 0) return 'good';
  if (severity === 1) return 'uncertain';
  return 'bad';
}
