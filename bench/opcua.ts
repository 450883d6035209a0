/**
 * OPC UA benchmark: notifications per second that OpcuaSource turns into TagSamples on the bus, for 1,000 and
 * 10,000 tags sampled every 100 ms, beside a bare node-opcua client subscription (monitored item groups, one
 * `changed` event per value: what a minimal client does) on the same server in the same run.
 *
 * The server runs in a child process, and so does each client, one after the other: the CPU and RSS figures are
 * the client's alone. Every tag changes at every sample (a counter computed at each read), so the offered rate is
 * tags × 10 /s; on a 2-core machine the server saturates first at 10k tags, which is why the figure is a ratio to
 * the bare client measured against the same server and not an absolute.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { result, type BenchResult, type Progress } from './result.js';
import { spawnOpcuaTestServer } from '../test/support/opcua-server.js';

const CHILD_FLAG = '--lineguard-opcua-bench-client';
const SAMPLING_MS = 100;
const WARMUP_MS = Number(process.env.OPCUA_BENCH_WARMUP_MS ?? 3000);
const MEASURE_MS = Number(process.env.OPCUA_BENCH_MEASURE_MS ?? 8000);

type Variant = 'bare' | 'lineguard';

interface ClientReport {
  variant: Variant;
  notifications: number;
  seconds: number;
  /** Client CPU over the measurement, % of one core. */
  cpuPercent: number;
  rssMb: number;
  maxRssMb: number;
  setupMs: number;
}

export async function run(progress: Progress): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const [count, name] of [[1000, 'opcua.notifications_1k'], [10000, 'opcua.notifications_10k']] as const) {
    progress(`starting a server with ${count} variables changing every read`);
    const server = await spawnOpcuaTestServer({ securityModes: ['None'], generated: { count, prefix: 'v' } });
    try {
      const reports: Partial<Record<Variant, ClientReport>> = {};
      for (const variant of ['bare', 'lineguard'] as const) {
        progress(`${count} tags: ${variant} client, ${WARMUP_MS / 1000} s warm-up + ${MEASURE_MS / 1000} s`);
        const r = await runClient(variant, server.endpoint, server.namespaceUri, count);
        reports[variant] = r;
        progress(`${count} tags: ${variant} ${Math.round(r.notifications / r.seconds)} notifications/s, CPU ${r.cpuPercent.toFixed(1)} %, RSS ${r.rssMb.toFixed(0)} MB`);
      }
      const bare = reports.bare!;
      const lg = reports.lineguard!;
      out.push(result(name, lg.notifications / lg.seconds, 'notifications/s', 'higher', bare.notifications / bare.seconds, 'bare node-opcua subscription, same server', {
        offered_per_s: count * (1000 / SAMPLING_MS),
        lineguard_cpu_percent: round(lg.cpuPercent),
        bare_cpu_percent: round(bare.cpuPercent),
        lineguard_cpu_us_per_notification: round((lg.cpuPercent / 100) * 1e6 / (lg.notifications / lg.seconds)),
        bare_cpu_us_per_notification: round((bare.cpuPercent / 100) * 1e6 / (bare.notifications / bare.seconds)),
        lineguard_rss_mb: round(lg.rssMb),
        bare_rss_mb: round(bare.rssMb),
        lineguard_setup_ms: lg.setupMs,
        bare_setup_ms: bare.setupMs,
      }));
    } finally {
      await server.stop();
    }
  }
  return out;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Runs one client in a child process and returns what it measured. */
async function runClient(variant: Variant, endpoint: string, namespaceUri: string, count: number): Promise<ClientReport> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [self, CHILD_FLAG, JSON.stringify({ variant, endpoint, namespaceUri, count })], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${variant} client did not report within 120 s`));
    }, 120_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{"variant"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as ClientReport);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${variant} client exited with code ${code}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Child side.

interface ClientArgs {
  variant: Variant;
  endpoint: string;
  namespaceUri: string;
  count: number;
}

/** Counts notifications from `start()` on; returns a stop function. */
type Runner = (count: (n: number) => void) => Promise<() => Promise<void>>;

async function clientMain(args: ClientArgs): Promise<void> {
  const nodeIds = Array.from({ length: args.count }, (_, i) => `nsu=${args.namespaceUri};s=v${i}`);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'lineguard-opcua-bench-'));
  let counted = 0;
  const t0 = Date.now();
  const runner: Runner = args.variant === 'bare' ? bareClient(args.endpoint, nodeIds, stateDir) : lineguardClient(args.endpoint, nodeIds, stateDir);
  const stop = await runner((n) => (counted += n));
  const setupMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const n0 = counted;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const report: ClientReport = {
    variant: args.variant,
    notifications: counted - n0,
    seconds,
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
    rssMb: process.memoryUsage().rss / 1e6,
    maxRssMb: process.resourceUsage().maxRSS / 1e3,
    setupMs,
  };
  await stop();
  rmSync(stateDir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** A minimal node-opcua client: subscription, items in groups of 1000, one `changed` event per value. */
function bareClient(endpoint: string, nodeIds: string[], stateDir: string): Runner {
  return async (count) => {
    const o = await import('node-opcua');
    // Its own PKI folder: without one node-opcua writes to ~/.config (STACK-NOTES).
    const clientCertificateManager = new o.OPCUACertificateManager({ rootFolder: path.join(stateDir, 'pki'), disableFileWatchers: true });
    const client = o.OPCUAClient.create({ endpointMustExist: false, clientCertificateManager, connectionStrategy: { maxRetry: 0 } });
    await client.connect(endpoint);
    const session = await client.createSession();
    const namespaceArray = await session.readNamespaceArray();
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: SAMPLING_MS, requestedMaxKeepAliveCount: 10, requestedLifetimeCount: 60, publishingEnabled: true,
    });
    const resolved = nodeIds.map((id) => {
      const [, uri, rest] = /^nsu=(.+?);(s=.*)$/.exec(id)!;
      return `ns=${namespaceArray.indexOf(uri!)};${rest}`;
    });
    for (let i = 0; i < resolved.length; i += 1000) {
      const group = await subscription.monitorItems(
        resolved.slice(i, i + 1000).map((nodeId) => ({ nodeId, attributeId: o.AttributeIds.Value })),
        { samplingInterval: SAMPLING_MS, queueSize: 10, discardOldest: true },
        o.TimestampsToReturn.Both,
      );
      group.on('changed', () => count(1));
    }
    return async () => {
      await session.close(true);
      await client.disconnect();
    };
  };
}

/** OpcuaSource publishing on a TagBus, counting the samples the bus carries. */
function lineguardClient(endpoint: string, nodeIds: string[], stateDir: string): Runner {
  return async (count) => {
    const [{ OpcuaSource }, { TagBus }, { Registry }, { pino }] = await Promise.all([
      import('../src/connectors/opcua/index.js'), import('../src/core/tag-bus.js'), import('prom-client'), import('pino'),
    ]);
    const bus = new TagBus();
    bus.subscribe((batch) => count(batch.length));
    const source = new OpcuaSource({
      name: 'bench', endpoint,
      security: { mode: 'None', trustOnFirstUse: false }, auth: { type: 'anonymous' },
      clock: { timestamps: 'source', maxSkewMs: 86_400_000, stepThresholdMs: 300_000 },
      publishingIntervalMs: SAMPLING_MS, sessionTimeoutMs: 60000, keepAliveCount: 10, silenceTimeoutIntervals: 3,
      requestTimeoutMs: 30000, maxItemsPerCall: 1000, retryDegradedMs: 30000, perTagAgeMetric: false,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 10000 },
      tags: nodeIds.map((nodeId, i) => ({ tag: `v${i}`, nodeId, mode: 'subscribe' as const, samplingIntervalMs: SAMPLING_MS, queueSize: 10 })),
    }, { log: pino({ level: 'warn' }), metrics: new Registry(), bus, gatewayId: 'bench', stateDir });
    await source.start(new AbortController().signal);
    if (source.health().state !== 'up') throw new Error(`OpcuaSource is not up: ${source.health().reason}`);
    return () => source.stop();
  };
}

if (process.argv[2] === CHILD_FLAG && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  clientMain(JSON.parse(process.argv[3] ?? '{}') as ClientArgs).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
