import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Ai4iRow, CmapssCycle } from './datasets.js';

/** Namespace of the demo line's variables; the generated config addresses them as `nsu=<this>;s=...`. */
export const DEMO_NAMESPACE = 'urn:lineguard:demo-line';

export const PRESS_VARIABLES = ['AirTemperature', 'ProcessTemperature', 'RotationalSpeed', 'Torque', 'ToolWear', 'ProductType'] as const;
export const ENGINE_SENSORS = Array.from({ length: 21 }, (_, i) => `s${i + 1}`);

export interface SimulatedLineOptions {
  pkiDir: string;
  /** Real-time speed-up: 1 = one AI4I process per second and one engine cycle per second. */
  speed: number;
  press: { rows: readonly Ai4iRow[]; startIndex: number };
  engines: ReadonlyArray<{ unit: number; cycles: readonly CmapssCycle[]; startCycle: number }>;
  port?: number;
  onPressRow?: (row: Ai4iRow, index: number) => void;
  onEngineCycle?: (cycle: CmapssCycle) => void;
}

type NodeOpcua = typeof import('node-opcua');
type UAVariable = import('node-opcua').UAVariable;

/**
 * A production line as a PLC would show it: a node-opcua server whose variables replay real data in real time
 * (scaled by `speed`). Press1 replays the AI4I 2020 milling processes in order, so its faults are the dataset's
 * own; Engine1 replays C-MAPSS FD001 engines run to failure, one after the other.
 */
export class SimulatedLine {
  #server: import('node-opcua').OPCUAServer | undefined;
  #timers: NodeJS.Timeout[] = [];
  #press = new Map<string, UAVariable>();
  #engine = new Map<string, UAVariable>();
  #pressIndex: number;
  #engineIndex = 0;
  #engineCycle: number;

  constructor(private readonly options: SimulatedLineOptions) {
    this.#pressIndex = options.press.startIndex;
    this.#engineCycle = options.engines[0]?.startCycle ?? 0;
  }

  get endpointUrl(): string {
    const url = this.#server?.getEndpointUrl();
    if (!url) throw new Error('simulated line not started');
    return url.replace(/\/\/[^:/]+:/, '//127.0.0.1:');
  }

  get pressIndex(): number {
    return this.#pressIndex;
  }

  /** Jumps the press replay to a row (the next tick writes the row after it). */
  seek(index: number): void {
    this.#pressIndex = Math.max(0, Math.min(index, this.options.press.rows.length - 1)) - 1;
  }

  async start(): Promise<void> {
    const opcua: NodeOpcua = await import('node-opcua');
    mkdirSync(this.options.pkiDir, { recursive: true });
    const serverCertificateManager = new opcua.OPCUACertificateManager({
      rootFolder: path.join(this.options.pkiDir, 'server'),
      automaticallyAcceptUnknownCertificate: true,
    });
    // Both managers rooted in our folder: node-opcua otherwise creates ~/.config/node-opcua-default-nodejs/.
    const userCertificateManager = new opcua.OPCUACertificateManager({
      rootFolder: path.join(this.options.pkiDir, 'user'),
      automaticallyAcceptUnknownCertificate: false,
    });
    const server = new opcua.OPCUAServer({
      port: this.options.port ?? 0,
      hostname: '127.0.0.1',
      resourcePath: '/UA/DemoLine',
      buildInfo: { productName: 'Lineguard demo line', manufacturerName: 'Lineguard', softwareVersion: '1.0' },
      serverCertificateManager,
      userCertificateManager,
      securityPolicies: [opcua.SecurityPolicy.None, opcua.SecurityPolicy.Basic256Sha256],
      securityModes: [opcua.MessageSecurityMode.None, opcua.MessageSecurityMode.SignAndEncrypt],
      allowAnonymous: true,
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace!;
    const ns = addressSpace.registerNamespace(DEMO_NAMESPACE);
    const objects = addressSpace.rootFolder.objects;
    const press = ns.addObject({ organizedBy: objects, browseName: 'Press1', nodeId: 's=Press1' });
    for (const name of PRESS_VARIABLES) {
      this.#press.set(name, ns.addVariable({
        componentOf: press, browseName: name, nodeId: `s=Press1.${name}`, dataType: 'Double', minimumSamplingInterval: 50,
      }));
    }
    const engine = ns.addObject({ organizedBy: objects, browseName: 'Engine1', nodeId: 's=Engine1' });
    for (const name of [...ENGINE_SENSORS, 'setting1', 'setting2', 'setting3', 'cycle']) {
      this.#engine.set(name, ns.addVariable({
        componentOf: engine, browseName: name, nodeId: `s=Engine1.${name}`, dataType: 'Double', minimumSamplingInterval: 50,
      }));
    }
    await server.start();
    this.#server = server;
    this.#writePress(opcua);
    this.#writeEngine(opcua);
    const periodMs = 1000 / this.options.speed;
    this.#timers.push(setInterval(() => {
      this.#pressIndex = (this.#pressIndex + 1) % this.options.press.rows.length;
      this.#writePress(opcua);
    }, periodMs));
    this.#timers.push(setInterval(() => {
      this.#advanceEngine();
      this.#writeEngine(opcua);
    }, periodMs));
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const server = this.#server;
    this.#server = undefined;
    await server?.shutdown(0);
  }

  #writePress(opcua: NodeOpcua): void {
    const row = this.options.press.rows[this.#pressIndex]!;
    const values: Record<(typeof PRESS_VARIABLES)[number], number> = {
      AirTemperature: row.airTemperatureK,
      ProcessTemperature: row.processTemperatureK,
      RotationalSpeed: row.rotationalSpeedRpm,
      Torque: row.torqueNm,
      ToolWear: row.toolWearMin,
      ProductType: { L: 0, M: 1, H: 2 }[row.type],
    };
    const now = new Date();
    for (const [name, value] of Object.entries(values)) set(opcua, this.#press.get(name)!, value, now);
    this.options.onPressRow?.(row, this.#pressIndex);
  }

  #advanceEngine(): void {
    const engines = this.options.engines;
    const current = engines[this.#engineIndex];
    if (!current) return;
    this.#engineCycle++;
    if (this.#engineCycle >= current.cycles.length) {
      this.#engineIndex = (this.#engineIndex + 1) % engines.length;
      this.#engineCycle = engines[this.#engineIndex]!.startCycle;
    }
  }

  #writeEngine(opcua: NodeOpcua): void {
    const engine = this.options.engines[this.#engineIndex];
    const cycle = engine?.cycles[this.#engineCycle];
    if (!cycle) return;
    const now = new Date();
    cycle.sensors.forEach((value, i) => set(opcua, this.#engine.get(`s${i + 1}`)!, value, now));
    cycle.settings.forEach((value, i) => set(opcua, this.#engine.get(`setting${i + 1}`)!, value, now));
    set(opcua, this.#engine.get('cycle')!, cycle.cycle, now);
    this.options.onEngineCycle?.(cycle);
  }
}

function set(opcua: NodeOpcua, variable: UAVariable, value: number, sourceTimestamp: Date): void {
  variable.setValueFromSource(new opcua.Variant({ dataType: opcua.DataType.Double, value }), opcua.StatusCodes.Good, sourceTimestamp);
}
