import type { Component, ComponentContext } from '../core/component.js';
import type { Config } from './config/schema.js';
import { SampleBuffer } from '../buffer/index.js';
import { OpcuaSource } from '../connectors/opcua/index.js';
import { MqttAlertSink, MqttSource } from '../connectors/mqtt/index.js';
import { ModelRunner } from '../runtime/index.js';
import { SourceWatch } from './source-watch.js';
import { tagSamplingIntervals } from './tag-intervals.js';

/**
 * What the daemon runs for a config: one entry per component, in start order, each with the slice of the config
 * it depends on. Reload compares fingerprints: an entry whose fingerprint did not change keeps running untouched.
 */
export interface PlannedComponent {
  name: string;
  /** JSON of everything this component's behaviour depends on (its section, its broker, the gateway...). */
  fingerprint: string;
  /** Components this one holds references to: when one of them restarts, this one restarts too. */
  dependsOn: string[];
  create(ctx: ComponentContext, running: RunningComponents): Component;
}

/** Lookup of components already started earlier in the same plan. */
export interface RunningComponents {
  get(name: string): Component | undefined;
}

const BUFFER = 'buffer';

export function planComponents(config: Config, baseDir: string): PlannedComponent[] {
  const gateway = { id: config.gateway.id, stateDir: config.gateway.stateDir };
  const fingerprint = (...parts: unknown[]): string => JSON.stringify([gateway, ...parts]);
  const brokers = new Map(config.mqtt.brokers.map((b) => [b.name, b]));
  const plan: PlannedComponent[] = [];
  // A tag's sampling interval (OPC UA subscribe or poll): the default hold of its value in model windows follows from it.
  const tagIntervals = tagSamplingIntervals(config);

  plan.push({
    name: BUFFER,
    fingerprint: fingerprint(config.buffer),
    dependsOn: [],
    create: (ctx) => new SampleBuffer(config.buffer, ctx),
  });

  for (const model of config.models) {
    plan.push({
      name: `model/${model.name}`,
      fingerprint: fingerprint(model, baseDir),
      dependsOn: [BUFFER],
      create: (ctx, running) => {
        const buffer = requireBuffer(running);
        return new ModelRunner(model, ctx, {
          windows: buffer, outbox: buffer.outbox, recorder: buffer.inferences, baseDir, tagIntervalMs: (tag) => tagIntervals.get(tag),
        });
      },
    });
  }

  const alerts = config.mqtt.alerts;
  if (alerts) {
    const broker = brokers.get(alerts.broker);
    if (broker) {
      plan.push({
        name: 'mqtt-sink',
        fingerprint: fingerprint(alerts, broker),
        dependsOn: [BUFFER],
        create: (ctx, running) => new MqttAlertSink(alerts, broker, ctx, requireBuffer(running).outbox),
      });
    }
  }

  for (const server of config.opcua) {
    plan.push({
      name: `opcua/${server.name}`,
      fingerprint: fingerprint(server),
      dependsOn: [],
      create: (ctx) => new OpcuaSource(server, ctx),
    });
  }

  for (const source of config.mqtt.sources) {
    const broker = brokers.get(source.broker);
    if (!broker) continue;
    plan.push({
      name: `mqtt-source/${source.name}`,
      fingerprint: fingerprint(source, broker),
      dependsOn: [],
      create: (ctx) => new MqttSource(source, broker, ctx),
    });
  }
  const sources = plan.filter((p) => p.name.startsWith('opcua/') || p.name.startsWith('mqtt-source/')).map((p) => p.name);
  if (sources.length > 0) {
    plan.push({
      name: 'source-watch',
      fingerprint: fingerprint(config.gateway.sourceUnavailable, sources),
      // Not dependent on the sources: it looks them up by name at every check, so a restarted source is seen as it is.
      dependsOn: [BUFFER],
      create: (ctx, running) => new SourceWatch(
        config.gateway.sourceUnavailable, sources, (name) => running.get(name)?.health(), requireBuffer(running).outbox, ctx,
      ),
    });
  }
  return plan;
}

function requireBuffer(running: RunningComponents): SampleBuffer {
  const buffer = running.get(BUFFER);
  if (!(buffer instanceof SampleBuffer) || buffer.health().state === 'down') {
    throw new Error('the SQLite buffer is not running (see component "buffer" in /healthz)');
  }
  return buffer;
}
