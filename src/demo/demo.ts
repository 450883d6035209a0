import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { EXIT, type CliIo } from '../core/cli-command.js';
import type { AlertEvent } from '../core/alert.js';
import { loadConfigFile } from '../daemon/config/load.js';
import { Daemon } from '../daemon/daemon.js';
import { SecretRedactor } from '../daemon/logger.js';
import { enginesOf, loadAi4i, loadCmapss, loadSteelPlates } from './datasets.js';
import { demoConfigYaml, type DemoRule } from './demo-config.js';
import { EmbeddedBroker } from './embedded-broker.js';
import { defectBursts, InspectionStation, INSPECTION_TOPIC } from './inspection-station.js';
import { SimulatedLine } from './simulated-line.js';
import { readLineguardMetadata } from './model-metadata.js';

/** The project root, from dist/src/demo/ or src/demo/. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fileURLToPath(import.meta.url).includes('/dist/') ? '../../..' : '../..');

export async function runDemo(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      speed: { type: 'string', default: '4' },
      'mqtt-url': { type: 'string' },
      'print-config': { type: 'boolean', default: false },
      'duration-s': { type: 'string' },
      'state-dir': { type: 'string' },
      'http-port': { type: 'string', default: '0' },
    },
  });
  const speed = Number(values.speed);
  if (!Number.isFinite(speed) || speed <= 0 || speed > 50) {
    io.err('lineguard demo: --speed must be a number between 0 and 50 (rows per second)');
    return EXIT.USAGE;
  }
  const periodMs = Math.round(1000 / speed);
  const faultModel = path.join(ROOT, 'models/ai4i-fault/model.onnx');
  const rulModel = path.join(ROOT, 'models/cmapss-rul/model.onnx');
  const rulMeta = await readLineguardMetadata(rulModel);
  const faultMeta = await readLineguardMetadata(faultModel);
  const faultRule = { raiseAbove: faultMeta.recommendedAlert.raiseAbove ?? 0.5, clearBelow: faultMeta.recommendedAlert.clearBelow ?? 0.25 };
  const rulRule = { raiseBelow: rulMeta.recommendedAlert.raiseBelow ?? 30, clearAbove: rulMeta.recommendedAlert.clearAbove ?? 40 };
  const rulInputs = rulMeta.inputs.map((i) => ({ name: i.name, variable: engineVariable(i.name, i.description) }));
  const defectModel = path.join(ROOT, 'models/steel-defect/model.onnx');
  const defectMeta = await readLineguardMetadata(defectModel);
  const steelDir = path.join(ROOT, 'models/data/uci-steel-plates-faults');
  const steel = loadSteelPlates(steelDir);
  const fieldOf = new Map(steel[0]!.features.map(([field]) => [squash(field), field]));
  const defectInputs = defectMeta.inputs.map((i) => {
    const field = fieldOf.get(squash(i.name));
    if (field === undefined) throw new Error(`the defect model input "${i.name}" is not a column of ${steelDir}/Faults27x7_var`);
    return { name: i.name, field };
  });
  const defectRules = defectMeta.recommendedAlerts as unknown as DemoRule[];

  const stateDir = values['state-dir'] ?? mkdtempSync(path.join(tmpdir(), 'lineguard-demo-'));
  mkdirSync(stateDir, { recursive: true });
  const opcuaPort = await freePort();
  const broker = values['mqtt-url'] ? undefined : new EmbeddedBroker();
  const mqttUrl = values['mqtt-url'] ?? `mqtt://127.0.0.1:${await freePort()}`;
  const configFile = path.join(stateDir, 'lineguard.yaml');
  const yaml = demoConfigYaml({
    gatewayId: 'demo-line', stateDir, opcuaEndpoint: `opc.tcp://127.0.0.1:${opcuaPort}/UA/DemoLine`, mqttUrl,
    httpPort: Number(values['http-port']), faultModel, rulModel, rulInputs, rulWindow: rulMeta.window, periodMs, faultRule, rulRule,
    defectModel, defectInputs, defectRules,
  });
  writeFileSync(configFile, yaml);
  if (values['print-config']) {
    io.out(yaml.trimEnd());
    if (!values['state-dir']) rmSync(stateDir, { recursive: true, force: true });
    return EXIT.OK;
  }

  io.out(`lineguard demo: simulated line at ${speed} rows/s, state in ${stateDir}`);
  const rows = loadAi4i(path.join(ROOT, 'models/data/ai4i2020/ai4i2020.csv'));
  // Start just before a run of real failures in the held-out part of the data, so alerts come within seconds.
  const firstFault = rows.findIndex((r, i) => i >= 7000 && r.machineFailure && (r.modes.HDF || r.modes.PWF || r.modes.OSF));
  const engines = [...enginesOf(loadCmapss(path.join(ROOT, 'models/data/nasa-cmapss-fd001/train_FD001.txt.gz'))).values()]
    .slice(0, 5)
    .map((cycles) => ({ unit: cycles[0]!.unit, cycles, startCycle: Math.max(0, cycles.length - rulMeta.window - 50) }));
  const line = new SimulatedLine({
    pkiDir: path.join(stateDir, 'demo-server-pki'), speed, port: opcuaPort,
    press: { rows, startIndex: Math.max(0, firstFault - 8) }, engines,
  });
  // The held-out test defects of the model card (never used in training), in bursts of one class.
  const testRows = new Set(readTestRows(path.join(ROOT, 'models/steel-defect/training-report.json')));
  const station = new InspectionStation({
    mqttUrl, periodMs: periodMs * 2, defects: defectBursts(steel.filter((d) => testRows.has(d.row))),
  });
  await broker?.start(Number(new URL(mqttUrl).port));
  await line.start();
  await station.start();

  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) {
    for (const e of loaded.errors) io.err(e);
    await station.stop();
    await line.stop();
    await broker?.stop();
    return EXIT.CONFIG;
  }
  const logFile = path.join(stateDir, 'lineguard.log');
  const log = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: false, mkdir: true }));
  const daemon = new Daemon(configFile, loaded, log, new SecretRedactor());
  await daemon.start();

  const { default: mqtt } = await import('mqtt');
  const alertTopic = 'lineguard/demo-line/alerts/#';
  const watcher = mqtt.connect(mqttUrl, { clientId: `lineguard-demo-viewer-${process.pid}`, clean: true });
  let raised = 0;
  let cleared = 0;
  watcher.on('connect', () => watcher.subscribe(alertTopic, { qos: 1 }));
  watcher.on('message', (_topic, payload) => {
    try {
      const alert = JSON.parse(payload.toString()) as AlertEvent;
      if (alert.state === 'raised') raised++;
      else cleared++;
      io.out(formatAlert(alert));
    } catch {
      io.out(`(unreadable alert payload: ${payload.toString().slice(0, 80)})`);
    }
  });
  const { port } = new URL(mqttUrl);
  io.out(`gateway log: ${logFile}`);
  io.out(`/metrics and /healthz: http://127.0.0.1:${daemon.httpPort ?? '?'}/healthz`);
  io.out(`status page: http://127.0.0.1:${daemon.httpPort ?? '?'}/`);
  io.out(`see the same alerts: mosquitto_sub -h 127.0.0.1 -p ${port} -t '${alertTopic}' -v`);
  io.out(`the inspection station's defect messages: mosquitto_sub -h 127.0.0.1 -p ${port} -t '${INSPECTION_TOPIC}' -v`);
  io.out('Ctrl-C stops the demo.');

  let lastSamples = daemon.bus.publishedCount;
  let lastInferences = await metricSum(daemon, 'lineguard_model_inferences_total');
  let lastAt = Date.now();
  const summary = setInterval(() => {
    void (async () => {
      const now = Date.now();
      const seconds = (now - lastAt) / 1000;
      const samples = daemon.bus.publishedCount;
      const inferences = await metricSum(daemon, 'lineguard_model_inferences_total');
      const depth = await metricSum(daemon, 'lineguard_outbox_depth');
      const health = daemon.health();
      io.out(
        `[summary] ${((samples - lastSamples) / seconds).toFixed(0)} samples/s, ${((inferences - lastInferences) / seconds).toFixed(1)} inferences/s, ` +
          `${station.published} defects inspected, alerts raised ${raised} cleared ${cleared}, outbox depth ${depth}, health ${health.status}` +
          (health.reasons.length ? ` (${health.reasons.join('; ')})` : ''),
      );
      lastSamples = samples;
      lastInferences = inferences;
      lastAt = now;
    })();
  }, 5000);

  const durationS = values['duration-s'] ? Number(values['duration-s']) : undefined;
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    if (durationS) setTimeout(resolve, durationS * 1000).unref();
  });
  io.out('stopping the demo...');
  clearInterval(summary);
  await daemon.stop();
  await watcher.endAsync(true);
  await station.stop();
  await line.stop();
  await broker?.stop();
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  io.out(`demo stopped: ${raised} alerts raised, ${cleared} cleared.`);
  return EXIT.OK;
}

function formatAlert(a: AlertEvent): string {
  const time = new Date(a.ts).toISOString().slice(11, 23);
  const verb = a.state === 'raised' ? 'RAISED ' : 'CLEARED';
  const who = a.model ? `${a.model.name}@${a.model.version}` : (a.source ?? a.gateway);
  const label = a.output?.label !== undefined ? ` class=${a.output.label}` : '';
  return `${time} ${verb} ${a.severity.padEnd(5)} ${who} [${a.provider}] ${a.kind}${label}: ${a.message}`;
}

/**
 * Maps a model input onto an Engine1 variable of the demo line by its name or description (`s2`, `sensor 2, T24:
 * ...`, `setting1`).
 */
function engineVariable(name: string, description = ''): string {
  const sensor = /^s(\d+)$/i.exec(name) ?? /\bsensor[ _]?(\d+)\b/i.exec(`${name} ${description}`);
  if (sensor) return `s${Number(sensor[1])}`;
  const setting = /setting[ _]?(\d)/i.exec(`${name} ${description}`);
  if (setting) return `setting${setting[1]}`;
  throw new Error(`the RUL model input "${name}" does not name a C-MAPSS sensor or setting`);
}

/** Lower case without separators: `TypeOfSteel_A300` and `type_of_steel_a300` are the same column. */
function squash(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** The 1-based Faults.NNA rows of the steel-defect model's test part (its training report lists them). */
function readTestRows(file: string): number[] {
  const report = JSON.parse(readFileSync(file, 'utf8')) as { split?: { testIndices?: number[] } };
  const rows = report.split?.testIndices;
  if (!rows?.length) throw new Error(`${file} lists no test rows (split.testIndices)`);
  return rows;
}

async function metricSum(daemon: Daemon, name: string): Promise<number> {
  const metric = daemon.registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  return data.values.reduce((sum, v) => sum + v.value, 0);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

