import ort from 'onnxruntime-node';
import { EXIT, type CliCommand, type CliIo } from '../core/cli-command.js';
import { formatBytes } from '../core/units.js';
import type { ExecutionProvider } from './config.js';
import type { ValueInfo } from './inference-protocol.js';
import { ModelFileError, readModelFile, type ModelFile } from './model-file.js';
import { formatShape } from './model-io.js';
import { probeProviders, type ProbeReport, type ProviderProbe } from './provider-probe.js';

const ALL_PROVIDERS: readonly ExecutionProvider[] = ['tensorrt', 'cuda', 'cpu'];

const USAGE = `Usage: lineguard model inspect FILE [--providers LIST] [--json] [--verbose]

Prints what an ONNX model file holds and how this machine can run it:
  - inputs and outputs: names, element types, shapes (symbolic dimensions by name);
  - the ONNX header (IR version, opsets, producer) and the Lineguard metadata (normalisation, labels, version);
  - for each execution provider (default: tensorrt,cuda,cpu): whether this onnxruntime build can create a
    session with it here, and which provider really ran a test inference on zeros (from ONNX Runtime's profile).

Options:
  --providers LIST   comma-separated providers to try (tensorrt, cuda, cpu)
  --json             one JSON document instead of text
  --verbose          let ONNX Runtime print its own warnings and errors (e.g. which GPU library failed to load)

Exit codes: 0 at least one provider runs the model, 66 no such file, 65 not a valid model, 69 no provider loads it.`;

/** `lineguard model inspect FILE`. */
export const modelCommand: CliCommand = {
  name: 'model',
  summary: 'Inspect an ONNX model: inputs, outputs, metadata, and the execution providers that can run it here',
  usage: USAGE,
  async run(argv: string[], io: CliIo): Promise<number> {
    const parsed = parseArgs(argv);
    if ('error' in parsed) {
      io.err(parsed.error);
      io.err(USAGE);
      return EXIT.USAGE;
    }
    if (parsed.help) {
      io.out(USAGE);
      return EXIT.OK;
    }
    let file: ModelFile;
    try {
      file = await readModelFile(parsed.file);
    } catch (err) {
      io.err(`lineguard model inspect: ${(err as Error).message}`);
      if (err instanceof ModelFileError && (err.code === 'missing' || err.code === 'unreadable')) return EXIT.NOINPUT;
      return EXIT.DATAERR;
    }
    ort.env.logLevel = parsed.verbose ? 'warning' : 'fatal';
    const report = await probeProviders(file.bytes, parsed.providers);
    if (parsed.json) io.out(JSON.stringify(toJson(file, report), null, 2));
    else printText(file, report, io, parsed.verbose);
    return report.providers.some((p) => p.loads && !p.error) ? EXIT.OK : EXIT.UNAVAILABLE;
  },
};

type Parsed = { file: string; providers: ExecutionProvider[]; json: boolean; verbose: boolean; help: false } | { help: true } | { error: string };

function parseArgs(argv: string[]): Parsed {
  if (argv.includes('--help') || argv.includes('-h')) return { help: true };
  const [sub, ...rest] = argv;
  if (sub !== 'inspect') return { error: sub === undefined ? 'missing subcommand' : `unknown subcommand "${sub}"` };
  let file: string | undefined;
  let providers = [...ALL_PROVIDERS];
  let json = false;
  let verbose = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--json') json = true;
    else if (arg === '--verbose') verbose = true;
    else if (arg === '--providers' || arg.startsWith('--providers=')) {
      const list = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : rest[++i];
      if (!list) return { error: '--providers needs a list, e.g. --providers cuda,cpu' };
      const names = list.split(',').map((p) => p.trim()).filter(Boolean);
      const unknown = names.filter((p) => !(ALL_PROVIDERS as readonly string[]).includes(p));
      if (unknown.length > 0 || names.length === 0) return { error: `unknown provider ${unknown.join(', ')}; use tensorrt, cuda, cpu` };
      providers = names as ExecutionProvider[];
    } else if (arg.startsWith('-')) return { error: `unknown option ${arg}` };
    else if (file === undefined) file = arg;
    else return { error: `unexpected argument ${arg}` };
  }
  if (file === undefined) return { error: 'missing FILE' };
  return { file, providers, json, verbose, help: false };
}

function toJson(file: ModelFile, report: ProbeReport): unknown {
  return {
    file: file.path,
    sha256: file.sha256,
    bytes: file.bytes.length,
    version: file.version,
    onnx: {
      irVersion: file.header.irVersion, opsets: file.header.opsets, producer: file.header.producerName,
      producerVersion: file.header.producerVersion, modelVersion: file.header.modelVersion, doc: file.header.docString,
    },
    inputs: report.inputs,
    outputs: report.outputs,
    metadata: file.metadata ?? null,
    otherMetadata: Object.fromEntries(Object.entries(file.header.metadata).filter(([k]) => k !== 'lineguard')),
    onnxruntime: { version: ort.env.versions.node ?? ort.env.versions.common, platform: `${process.platform}/${process.arch}` },
    providers: report.providers,
  };
}

function printText(file: ModelFile, report: ProbeReport, io: CliIo, verbose: boolean): void {
  const h = file.header;
  const meta = file.metadata;
  io.out(`File        ${file.path} (${formatBytes(file.bytes.length)})`);
  io.out(`SHA-256     ${file.sha256}`);
  io.out(`Version     ${file.version}`);
  const opsets = h.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  io.out(`ONNX        IR ${h.irVersion}, opset ${opsets}${h.producerName ? `, producer ${h.producerName} ${h.producerVersion}`.trimEnd() : ''}`);
  if (h.docString) io.out(`Description ${h.docString}`);
  if (meta) io.out(`Model       ${meta.name} ${meta.version}${meta.task ? ` — ${meta.task}` : ''}${meta.window ? `, window ${meta.window}` : ''}`);
  else io.out('Model       no Lineguard metadata: features are fed raw (no normalisation), shapes come from the session');
  io.out('');
  io.out('Inputs');
  for (const input of report.inputs) io.out(`  ${valueLine(input)}`);
  if (report.inputs.length === 0) io.out('  (unknown: no provider could load the model)');
  meta?.inputs.forEach((f, i) => {
    io.out(`    feature ${i}: ${f.name}${f.unit ? ` [${f.unit}]` : ''}  mean ${f.mean}  std ${f.std}${f.description ? `  ${f.description}` : ''}`);
  });
  io.out('Outputs');
  for (const output of report.outputs) {
    const described = meta?.outputs.find((o) => o.name === output.name);
    const extra = described ? `  ${described.kind}${described.unit ? ` [${described.unit}]` : ''}${described.labels ? `  labels: ${described.labels.join(', ')}` : ''}` : '';
    io.out(`  ${valueLine(output)}${extra}`);
  }
  if (meta?.recommendedAlert !== undefined) io.out(`Recommended alert  ${JSON.stringify(meta.recommendedAlert)}`);
  if (meta?.training !== undefined) io.out(`Training    ${JSON.stringify(meta.training)}`);
  for (const [key, value] of Object.entries(h.metadata)) if (key !== 'lineguard') io.out(`Metadata    ${key} = ${value}`);
  io.out('');
  io.out(`Execution providers (onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}, ${process.platform}/${process.arch})`);
  for (const probe of report.providers) io.out(`  ${probe.provider.padEnd(9)} ${probeLine(probe)}`);
  if (!verbose && report.providers.some((p) => !p.loads)) {
    io.out('  (--verbose shows ONNX Runtime\'s own messages, e.g. which CUDA/TensorRT library it could not load)');
  }
}

function valueLine(v: ValueInfo): string {
  return `${v.name}  ${v.type ?? 'non-tensor'}  ${formatShape(v.shape)}`;
}

function probeLine(p: ProviderProbe): string {
  if (!p.loads) return `unavailable: ${p.error ?? 'unknown error'}`;
  if (p.error) return `loads, but ${p.error}`;
  if (p.notRun) return `loads (${p.notRun})`;
  const nodes = Object.entries(p.nodes ?? {}).map(([name, n]) => `${n} on ${name}`).join(', ');
  const ms = p.runMs !== undefined ? `, test run ${p.runMs.toFixed(2)} ms` : '';
  if (p.ranOn && p.ranOn !== p.provider) return `loads, but the test run ran on ${p.ranOn} (${nodes})${ms}`;
  return `ok: runs here (${nodes || 'no node events in the profile'})${ms}`;
}
