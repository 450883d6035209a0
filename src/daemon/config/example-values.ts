/**
 * The values the generated example config shows where a field has no default: a small, realistic press line.
 * Comments, defaults and the order of keys all come from the schema (example-config.ts); only these values are
 * hand-written, and a test checks that the generated file passes check-config.
 */
export const EXAMPLE_VALUES = {
  $schema: undefined,
  gateway: { id: 'press-line-1', stateDir: '/var/lib/lineguard' },
  opcua: [
    {
      name: 'plc1',
      endpoint: 'opc.tcp://192.168.10.5:4840',
      security: { mode: 'SignAndEncrypt', policy: 'Basic256Sha256' },
      tags: [
        { tag: 'press1.air_temp', nodeId: 'ns=2;s=Press1.AirTemperature', samplingIntervalMs: 1000 },
        { tag: 'press1.process_temp', nodeId: 'ns=2;s=Press1.ProcessTemperature', samplingIntervalMs: 1000 },
        { tag: 'press1.speed', nodeId: 'ns=2;s=Press1.Speed', samplingIntervalMs: 100, deadband: { type: 'absolute', value: 5 } },
        { tag: 'press1.torque', nodeId: 'ns=2;s=Press1.Torque', samplingIntervalMs: 100 },
        { tag: 'press1.tool_wear', nodeId: 'ns=2;s=Press1.ToolWear', samplingIntervalMs: 1000 },
        { tag: 'press1.product_type', nodeId: 'ns=2;s=Press1.ProductType', samplingIntervalMs: 1000 },
      ],
    },
  ],
  mqtt: {
    brokers: [{ name: 'site', url: 'mqtt://127.0.0.1:1883' }],
    sources: [
      {
        name: 'vibration-sensors',
        broker: 'site',
        topics: ['plant/press1/+/telemetry'],
        values: [{ tag: 'press1.{3}.rms', pointer: '/rms' }],
        timestamp: { pointer: '/ts', format: 'epoch_ms' },
      },
    ],
    alerts: { broker: 'site' },
  },
  models: [
    {
      name: 'press-fault',
      file: '/opt/lineguard/models/ai4i-fault/model.onnx',
      asset: 'press-line-1/press1',
      executionProviders: ['tensorrt', 'cuda', 'cpu'],
      inputs: ['press1.air_temp', 'press1.process_temp', 'press1.speed', 'press1.torque', 'press1.tool_wear', 'press1.product_type'],
      // The model card's recommended rule (models/ai4i-fault/README.md): one sample is one process, so no debounce.
      alert: { kind: 'equipment_fault', severity: 'major', raiseAbove: 0.73, clearBelow: 0.365, forSamples: 1 },
    },
  ],
} as const;
