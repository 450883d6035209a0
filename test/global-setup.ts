/**
 * vitest globalSetup: makes sure the run has an MQTT broker and that every test file knows its URL.
 *
 * - `MQTT_URL` set by the environment: used as is.
 * - otherwise a broker already listening on 127.0.0.1:1883 (CI has one) is used;
 * - otherwise a private `mosquitto` is started on a free port for the run and stopped on teardown.
 *
 * The URL reaches test files as `process.env.MQTT_URL` (the forked workers inherit this process's environment)
 * and as `inject('mqttUrl')`.
 */
import type { TestProject } from 'vitest/node';
import { isListening, Mosquitto } from './support/mosquitto.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the MQTT broker the test run uses. */
    mqttUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let broker: Mosquitto | undefined;
  let url = process.env.MQTT_URL;
  if (!url) {
    if (await isListening(1883)) {
      url = 'mqtt://127.0.0.1:1883';
    } else {
      broker = await Mosquitto.start();
      url = broker.url;
    }
    process.env.MQTT_URL = url;
  }
  project.provide('mqttUrl', url);
  return async () => {
    await broker?.dispose();
  };
}
