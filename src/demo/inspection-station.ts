import type { SteelDefect } from './datasets.js';

/** The topic the demo's inspection station publishes on: one JSON message per detected defect. */
export const INSPECTION_TOPIC = 'demo-line/inspection1/defects';

export interface InspectionStationOptions {
  /** Broker URL (the demo's embedded broker). */
  mqttUrl: string;
  /** Defects to replay, in order, cycling. */
  defects: readonly SteelDefect[];
  /** Milliseconds between two defects. */
  periodMs: number;
  onDefect?: (defect: SteelDefect, index: number) => void;
}

/**
 * A surface-inspection camera beside the line, as a plant would have one: it publishes one JSON message per
 * detected defect over MQTT (QoS 1, its own timestamp), with the 27 features its image processing computed under
 * the vendor's names. The defects are real (UCI 198 Steel Plates Faults, held-out test rows); `trueClass` is the
 * inspectors' label, shown for comparison and not fed to the model.
 */
export class InspectionStation {
  #client: import('mqtt').MqttClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  #index = 0;
  #published = 0;

  constructor(private readonly options: InspectionStationOptions) {}

  get published(): number {
    return this.#published;
  }

  async start(): Promise<void> {
    const { default: mqtt } = await import('mqtt');
    const client = mqtt.connect(this.options.mqttUrl, { clientId: `demo-inspection-station-${process.pid}`, clean: true });
    this.#client = client;
    // mqtt.js queues publishes until it is connected and reconnects by itself: enough for a stand-in device.
    this.#timer = setInterval(() => this.#publishNext(), this.options.periodMs);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.endAsync(true);
  }

  #publishNext(): void {
    const client = this.#client;
    const defects = this.options.defects;
    if (!client || defects.length === 0) return;
    const i = this.#index;
    const defect = defects[i % defects.length]!;
    this.#index = i + 1;
    const message = {
      ts: Date.now(),
      station: 'inspection1',
      defectId: i + 1,
      features: Object.fromEntries(defect.features),
      trueClass: defect.defectClass,
    };
    client.publish(INSPECTION_TOPIC, JSON.stringify(message), { qos: 1 });
    this.#published++;
    this.options.onDefect?.(defect, i);
  }
}

/**
 * The replay order: bursts of `burst` defects of one class, class after class, from the given rows (each class's
 * rows in file order). Lines produce defects in runs (a damaged roll scratches many plates), and runs are what the
 * per-class rules raise and clear on.
 */
export function defectBursts(defects: readonly SteelDefect[], burst = 4): SteelDefect[] {
  const byClass = new Map<string, SteelDefect[]>();
  for (const d of defects) byClass.set(d.defectClass, [...(byClass.get(d.defectClass) ?? []), d]);
  const queues = [...byClass.values()];
  const out: SteelDefect[] = [];
  for (let round = 0; queues.some((q) => q.length > round * burst); round++) {
    for (const q of queues) out.push(...q.slice(round * burst, (round + 1) * burst));
  }
  return out;
}
