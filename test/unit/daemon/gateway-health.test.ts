import { describe, expect, it } from 'vitest';
import type { ComponentHealth } from '../../../src/core/component.js';
import { GatewayHealth, roleOf, type ComponentStatus } from '../../../src/daemon/gateway-health.js';

/** The gateway's verdict from its components' health (README "Observability"), on a hand-driven monotonic clock. */
const GRACE = 60_000;

function status(name: string, state: ComponentHealth['state'], reason?: string, extra: Partial<ComponentStatus> = {}): ComponentStatus {
  return { name, role: roleOf(name), health: { state, ...(reason ? { reason } : {}) }, ...extra };
}

function started(): { health: GatewayHealth; advance: (ms: number) => void } {
  let now = 1_000;
  const health = new GatewayHealth({ warmUpGraceMs: GRACE, now: () => now });
  health.startFinished();
  return { health, advance: (ms) => (now += ms) };
}

const allUp = (): ComponentStatus[] => [
  status('buffer', 'up'),
  status('model/press', 'up'),
  status('mqtt-sink', 'up'),
  status('opcua/plc1', 'up'),
  status('mqtt-source/vib', 'up'),
];

describe('roleOf', () => {
  it('names the role of each planned component', () => {
    expect(['buffer', 'model/a', 'mqtt-sink', 'opcua/plc1', 'mqtt-source/x', 'http'].map(roleOf))
      .toEqual(['buffer', 'model', 'sink', 'source', 'source', 'other']);
  });
});

describe('GatewayHealth', () => {
  it('is up when every component is up', () => {
    expect(started().health.assess(allUp())).toEqual({ status: 'up', reasons: [] });
  });

  it('is degraded, not down, when a source has bad tags or is down', () => {
    const { health } = started();
    const components = allUp();
    components[3] = status('opcua/plc1', 'degraded', '3 of 29 tags degraded (press.temp: BadSensorFailure)');
    components[4] = status('mqtt-source/vib', 'down', 'cannot reach MQTT broker "site"');
    expect(health.assess(components)).toEqual({
      status: 'degraded',
      reasons: [
        'opcua/plc1 is degraded: 3 of 29 tags degraded (press.temp: BadSensorFailure)',
        'mqtt-source/vib is down: cannot reach MQTT broker "site"',
      ],
    });
  });

  it('is degraded while the sink is down within its bound, down once alerts are undeliverable beyond it', () => {
    const { health } = started();
    const components = allUp();
    components[2] = status('mqtt-sink', 'down', 'cannot reach MQTT broker "site": connect ECONNREFUSED');
    expect(health.assess(components).status).toBe('degraded');
    components[2] = status('mqtt-sink', 'down', 'cannot reach MQTT broker "site"', {
      undeliverable: 'no connection to MQTT broker "site" for 301 s (bound 300 s); 4 alert(s) wait in the outbox',
    });
    expect(health.assess(components)).toEqual({
      status: 'down',
      reasons: [
        'alerts cannot be delivered: no connection to MQTT broker "site" for 301 s (bound 300 s); 4 alert(s) wait in the outbox',
        'mqtt-sink is down: cannot reach MQTT broker "site"',
      ],
    });
  });

  it('is down when the buffer is down', () => {
    const { health } = started();
    const components = allUp();
    components[0] = status('buffer', 'down', 'cannot open /var/lib/lineguard/buffer.db: SQLITE_CANTOPEN');
    expect(health.assess(components)).toEqual({
      status: 'down',
      reasons: [
        'the buffer is down: samples and alerts cannot be stored',
        'buffer is down: cannot open /var/lib/lineguard/buffer.db: SQLITE_CANTOPEN',
      ],
    });
  });

  it('is down when every configured model is down, degraded while one still runs', () => {
    const { health } = started();
    const components = [...allUp(), status('model/second', 'up')];
    components[1] = status('model/press', 'down', 'cannot load model.onnx');
    expect(health.assess(components).status).toBe('degraded');
    components[5] = status('model/second', 'down', 'worker crashed');
    expect(health.assess(components)).toMatchObject({ status: 'down', reasons: ['all 2 models are down: nothing is watched', expect.any(String), expect.any(String)] });
    // No model configured at all is a gateway that only collects data: not down.
    expect(health.assess(allUp().filter((c) => c.role !== 'model')).status).toBe('up');
  });

  it('is starting during the warm-up, then up once every component has left starting', () => {
    let now = 0;
    const health = new GatewayHealth({ warmUpGraceMs: GRACE, now: () => now });
    const components = allUp();
    // start() still running: starting, even with every component up so far.
    expect(health.assess(components.slice(0, 2))).toEqual({ status: 'starting', reasons: [] });
    health.startFinished();
    components[1] = status('model/press', 'starting', 'filling the first window (12 of 64 rows)');
    components[3] = status('opcua/plc1', 'down', 'not connected to opc.tcp://plc1:4840: connecting');
    now = 5_000;
    expect(health.assess(components)).toEqual({
      status: 'starting',
      reasons: ['model/press is starting: filling the first window (12 of 64 rows)', 'opcua/plc1 is down: not connected to opc.tcp://plc1:4840: connecting'],
    });
    expect(health.warmedUp).toBe(false);
    components[1] = status('model/press', 'up');
    components[3] = status('opcua/plc1', 'up');
    now = 8_000;
    expect(health.assess(components)).toEqual({ status: 'up', reasons: [] });
    expect(health.warmedUp).toBe(true);
    expect(health.warmUpMs).toBe(8_000);
    // Once warmed up, a component restarted by a reload makes it degraded while it warms up, not starting again.
    components[1] = status('model/press', 'starting', 'loading model.onnx', { startedMsAgo: 500 });
    expect(health.assess(components)).toEqual({ status: 'degraded', reasons: ['model/press is starting: loading model.onnx'] });
  });

  it('counts a component still starting after the grace as degraded', () => {
    const { health, advance } = started();
    const components = allUp();
    components[1] = status('model/press', 'starting', 'filling the first window (3 of 64 rows)');
    advance(GRACE - 1);
    expect(health.assess(components).status).toBe('starting');
    advance(1);
    expect(health.assess(components)).toEqual({
      status: 'degraded',
      reasons: ['model/press is still starting after 60 s: filling the first window (3 of 64 rows)'],
    });
  });

  it('is down, not starting, when the buffer fails during the warm-up', () => {
    let now = 0;
    const health = new GatewayHealth({ warmUpGraceMs: GRACE, now: () => now });
    now = 100;
    expect(health.assess([status('buffer', 'down', 'disk I/O error'), status('model/press', 'starting')]).status).toBe('down');
  });
});
