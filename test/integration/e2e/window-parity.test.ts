import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../src/daemon/config/load.js';
import { main } from '../../../src/daemon/cli.js';
import { Daemon } from '../../../src/daemon/daemon.js';
import { createLogger, SecretRedactor } from '../../../src/daemon/logger.js';
import { enginesOf, loadAi4i, loadCmapss } from '../../../src/demo/datasets.js';
import { parseModelBytes } from '../../../src/runtime/model-file.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';
import { ROOT } from '../../unit/runtime/runtime-context.js';
import { readFileSync } from 'node:fs';

/**
 * Parity of live windows with the offline computation (issue 11): a node-opcua server that writes each tag only
 * when its value changes (report by exception: tags hold their values for stretches), replaying C-MAPSS FD001
 * engine 1 and AI4I 2020 at accelerated PLC time — one row per 10 s of PLC time, written every ~100 ms — to three
 * "PLCs" whose clocks are right, one hour behind and one hour ahead; and the same C-MAPSS rows over MQTT JSON, one
 * message per row. Every window the gateway evaluated (read back with `lineguard outputs --json`) must equal the
 * shipped model run offline on the same rows (max abs diff ≤ 1e-4).
 */
const MQTT_URL = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const PERIOD = 10_000;
const ROWS = 55;
const WINDOW = 30;
const HOUR = 3_600_000;
const GROUPS = [{ g: 'z', off: 0 }, { g: 'm', off: -HOUR }, { g: 'p', off: HOUR }] as const;
const CMAPSS_COLS = [2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21]; // sensor numbers, in the model's input order

const rulFile = path.join(ROOT, 'models/cmapss-rul/model.onnx');
const ai4iFile = path.join(ROOT, 'models/ai4i-fault/model.onnx');
const rulMeta = parseModelBytes(rulFile, readFileSync(rulFile)).metadata!;
const ai4iMeta = parseModelBytes(ai4iFile, readFileSync(ai4iFile)).metadata!;
const RUL_INPUTS = rulMeta.inputs.map((i) => i.name);
const AI4I_INPUTS = ai4iMeta.inputs.map((i) => i.name);

const engine = enginesOf(loadCmapss(path.join(ROOT, 'models/data/nasa-cmapss-fd001/train_FD001.txt.gz'))).get(1)!.slice(0, ROWS);
const cmRows = engine.map((c) => CMAPSS_COLS.map((s) => c.sensors[s - 1]!));
const ai4i = loadAi4i(path.join(ROOT, 'models/data/ai4i2020/ai4i2020.csv')).slice(0, ROWS);
const TYPE = { L: 0, M: 1, H: 2 } as const;
const aiRows = ai4i.map((r) => [r.airTemperatureK, r.processTemperatureK, r.rotationalSpeedRpm, r.torqueNm, r.toolWearMin, TYPE[r.type]]);

const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-parity-'));
const configFile = path.join(dir, 'lineguard.yaml');
const topic = `lineguard-parity-${process.pid}/rows`;
/** PLC time of row 0 on the right clock: a multiple of the period, two minutes ago (ends before now + skew). */
const base = Math.floor(Date.now() / PERIOD) * PERIOD - 120 * PERIOD;
let server: OpcuaTestServer;
let daemon: Daemon;
let longestHold = 0;

function name(g: string, input: string): string {
  return `cm_${g}_${input}`;
}

function config(): string {
  const opcua = GROUPS.map(({ g }) => `
  - name: plc-${g}
    endpoint: ${server.endpoint}
    security: { mode: None }
    publishingIntervalMs: 50
    tags:
${RUL_INPUTS.map((i) => `      - { tag: cm.${g}.${i}, nodeId: "${server.stableNodeId(name(g, i))}", samplingIntervalMs: 0, queueSize: 100 }`).join('\n')}
${g === 'z' ? AI4I_INPUTS.map((i) => `      - { tag: ai.${i}, nodeId: "${server.stableNodeId(`ai_${i}`)}", samplingIntervalMs: 0, queueSize: 100 }`).join('\n') : ''}`).join('');
  const rul = (model: string, prefix: string, window: string): string => `
  - name: ${model}
    file: ${JSON.stringify(rulFile)}
    inputs: [${RUL_INPUTS.map((i) => `${prefix}.${i}`).join(', ')}]
    window: ${window}
    schedule: { everyMs: 100 }
    alert: { raiseBelow: 30, clearAbove: 40 }`;
  return `gateway: { id: parity, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }
log: { level: warn }
http: { enabled: false }
opcua:${opcua}
mqtt:
  brokers: [{ name: local, url: ${MQTT_URL} }]
  sources:
    - name: rows
      broker: local
      topics: [${topic}]
      timestamp: { pointer: /ts }
      values:
${RUL_INPUTS.map((i) => `        - { tag: mq.${i}, pointer: /${i} }`).join('\n')}
models:${GROUPS.map(({ g }) => rul(`rul-${g}`, `cm.${g}`, `{ samples: ${WINDOW}, periodMs: ${PERIOD}, maxHoldMs: ${HOUR} }`)).join('')}${rul('rul-mqtt', 'mq', `{ samples: ${WINDOW} }`)}
  - name: fault
    file: ${JSON.stringify(ai4iFile)}
    inputs: [${AI4I_INPUTS.map((i) => `ai.${i}`).join(', ')}]
    window: { samples: 1, periodMs: ${PERIOD}, maxHoldMs: ${HOUR} }
    schedule: { everyMs: 100 }
    alert: { raiseAbove: 0.73, clearBelow: 0.365 }
`;
}

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (l) => out.push(l), err: (l) => err.push(l), log: createLogger({ level: 'silent' }, new SecretRedactor()) });
  return { code, out, err };
}

type Output = { ts: number; model: string; outputs: Record<string, number | number[]>; skipped?: string };
let outputs: Output[] = [];

beforeAll(async () => {
  const variables = [
    ...GROUPS.flatMap(({ g }) => RUL_INPUTS.map((i) => ({ name: name(g, i), dataType: 'Double' as const, value: 0 }))),
    ...AI4I_INPUTS.map((i) => ({ name: `ai_${i}`, dataType: 'Double' as const, value: 0 })),
  ];
  server = await OpcuaTestServer.start({ securityModes: ['None'], variables });
  // The values before the replay, stamped on each PLC's own clock.
  for (const { g, off } of GROUPS) for (const i of RUL_INPUTS) server.setValue(name(g, i), 0, { sourceTimestamp: new Date(base + off - 5 * PERIOD) });
  for (const i of AI4I_INPUTS) server.setValue(`ai_${i}`, 0, { sourceTimestamp: new Date(base - 5 * PERIOD) });
  writeFileSync(configFile, config());
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const redactor = new SecretRedactor();
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  daemon = new Daemon(configFile, loaded, createLogger({ level: 'warn', destination: sink }, redactor), redactor);
  await daemon.start();
  // Wait until every source is connected and subscribed.
  const deadline = Date.now() + 30_000;
  while (!['opcua/plc-z', 'opcua/plc-m', 'opcua/plc-p', 'mqtt-source/rows'].every((n) => daemon.component(n)?.health().state === 'up')) {
    if (Date.now() > deadline) throw new Error(`sources not up: ${JSON.stringify(daemon.health().reasons)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pub = await mqtt.connectAsync(MQTT_URL);
  // Replay: each tag is written only when its value changes (report by exception).
  const last = new Map<string, number>();
  const heldSince = new Map<string, number>();
  const write = (variable: string, value: number, ts: number, k: number): void => {
    if (last.get(variable) === value) {
      longestHold = Math.max(longestHold, k - heldSince.get(variable)!);
      return;
    }
    last.set(variable, value);
    heldSince.set(variable, k);
    server.setValue(variable, value, { sourceTimestamp: new Date(ts) });
  };
  for (let k = 0; k < ROWS; k++) {
    for (const { g, off } of GROUPS) RUL_INPUTS.forEach((input, t) => write(name(g, input), cmRows[k]![t]!, base + off + k * PERIOD, k));
    AI4I_INPUTS.forEach((input, t) => write(`ai_${input}`, aiRows[k]![t]!, base + k * PERIOD, k));
    await pub.publishAsync(topic, JSON.stringify({ ts: base + k * PERIOD, ...Object.fromEntries(RUL_INPUTS.map((i, t) => [i, cmRows[k]![t]])) }), { qos: 1 });
    await new Promise((r) => setTimeout(r, 100));
  }
  await pub.endAsync();
  // The last complete windows are evaluated once the sources' time passed them (allowed lateness 2 s).
  const lastEnd = (off: number): number => base + off + (ROWS - 1) * PERIOD;
  const done = (): boolean => {
    const health = (m: string): { lastEnd?: string | null } => (daemon.component(`model/${m}`)?.health().details?.window ?? {}) as { lastEnd?: string | null };
    return GROUPS.every(({ g, off }) => health(`rul-${g}`).lastEnd === new Date(lastEnd(off)).toISOString())
      && health('rul-mqtt').lastEnd === new Date(lastEnd(0)).toISOString();
  };
  const until = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > until) throw new Error('the last windows were not evaluated in time');
    await new Promise((r) => setTimeout(r, 50));
  }
  await daemon.stop();
  const read = await cli(['outputs', '--config', configFile, '--json']);
  expect(read.code).toBe(0);
  outputs = read.out.map((l) => JSON.parse(l) as Output);
}, 120_000);

afterAll(async () => {
  await daemon?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The rows of the window ending at row k: before row 0 the PLC held its initial value, 0. */
function windowRows(data: number[][], k: number, n: number): number[][] {
  const out: number[][] = [];
  for (let j = k - n + 1; j <= k; j++) out.push(j < 0 ? data[0]!.map(() => 0) : data[j]!);
  return out;
}

/** The model run offline: z-score with the metadata, float32, the shipped ONNX file. */
async function offline(file: string, meta: typeof rulMeta, rows: number[][]): Promise<number> {
  const session = await sessions(file);
  const width = meta.inputs.length;
  const input = new Float32Array(rows.length * width);
  rows.forEach((row, r) => row.forEach((v, t) => (input[r * width + t] = (v - meta.inputs[t]!.mean) / meta.inputs[t]!.std)));
  const inputName = session.inputNames[0]!;
  const result = await session.run({ [inputName]: new ort.Tensor('float32', input, [1, rows.length, width]) });
  return Number((result[session.outputNames[0]!]!.data as Float32Array)[0]);
}
const cache = new Map<string, Promise<ort.InferenceSession>>();
function sessions(file: string): Promise<ort.InferenceSession> {
  let s = cache.get(file);
  if (!s) cache.set(file, (s = ort.InferenceSession.create(file)));
  return s;
}

describe('live windows equal the offline computation', () => {
  it('the replay really reports by exception: some tags hold their value for several rows', () => {
    expect(longestHold).toBeGreaterThanOrEqual(3);
  });

  for (const { g, off } of GROUPS) {
    it(`C-MAPSS 14 tags × 30 over OPC UA, PLC clock ${off === 0 ? 'right' : off < 0 ? 'one hour behind' : 'one hour ahead'}`, async () => {
      const mine = outputs.filter((o) => o.model === `rul-${g}`);
      const evaluated = mine.filter((o) => !o.skipped);
      // Every window from the first complete one (row 29) to the last is evaluated, none skipped.
      const ks = evaluated.map((o) => (o.ts - base - off) / PERIOD);
      for (let k = WINDOW; k < ROWS; k++) expect(ks).toContain(k);
      let maxDiff = 0;
      for (const o of evaluated) {
        const k = (o.ts - base - off) / PERIOD;
        expect(Number.isInteger(k)).toBe(true);
        const want = await offline(rulFile, rulMeta, windowRows(cmRows, k, WINDOW));
        maxDiff = Math.max(maxDiff, Math.abs((o.outputs.rul_cycles as number) - want));
      }
      expect(maxDiff).toBeLessThanOrEqual(1e-4);
      expect(mine.filter((o) => o.skipped && (o.ts - base - off) / PERIOD >= WINDOW)).toEqual([]);
    });
  }

  it('AI4I 6 tags × 1 over OPC UA (report by exception, product type held for long stretches)', async () => {
    const evaluated = outputs.filter((o) => o.model === 'fault' && !o.skipped);
    expect(evaluated.length).toBeGreaterThanOrEqual(ROWS - 5);
    let maxDiff = 0;
    for (const o of evaluated) {
      const k = (o.ts - base) / PERIOD;
      const want = await offline(ai4iFile, ai4iMeta, windowRows(aiRows, k, 1));
      maxDiff = Math.max(maxDiff, Math.abs((o.outputs.failure_probability as number) - want));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
  });

  it('the same C-MAPSS rows over MQTT JSON, one message per row (one frame per sample time)', async () => {
    const evaluated = outputs.filter((o) => o.model === 'rul-mqtt' && !o.skipped);
    const ks = evaluated.map((o) => (o.ts - base) / PERIOD);
    for (let k = WINDOW; k < ROWS; k++) expect(ks).toContain(k);
    let maxDiff = 0;
    for (const o of evaluated) {
      const k = (o.ts - base) / PERIOD;
      expect(k).toBeGreaterThanOrEqual(WINDOW - 1);
      const want = await offline(rulFile, rulMeta, windowRows(cmRows, k, WINDOW));
      maxDiff = Math.max(maxDiff, Math.abs((o.outputs.rul_cycles as number) - want));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
  });
});
