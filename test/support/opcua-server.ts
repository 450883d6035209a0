/**
 * A real node-opcua server for tests, the end-to-end suite, the demo and the benchmark: simulated variables in
 * their own namespace, selectable security modes and policies, username/password users, a namespace order that can
 * change across restarts, and a restart on the same port with the same certificate.
 *
 * In-process:    const server = await OpcuaTestServer.start({ variables: [...] });
 * Child process: const child = await spawnOpcuaTestServer({ generated: { count: 10000 } });
 *                (runs the compiled dist/test/support/opcua-server.js: `npm run build` first)
 *
 * node-opcua is imported lazily, so importing this file costs nothing until a server starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { OPCUAServer, UAObject, UAVariable, Namespace } from 'node-opcua';

type Opcua = typeof import('node-opcua');

export type SimDataType =
  | 'Boolean' | 'SByte' | 'Byte' | 'Int16' | 'UInt16' | 'Int32' | 'UInt32' | 'Int64' | 'UInt64' | 'Float' | 'Double'
  | 'String' | 'DateTime' | 'ByteString';

export type SimValue = number | boolean | string | Date | Buffer | number[];

/** One simulated variable, node id `nsu=<namespaceUri>;s=<name>`. */
export interface SimVariable {
  /** Browse name and string identifier. */
  name: string;
  dataType: SimDataType;
  /** Initial value; an array makes an array variable (ValueRank 1). */
  value?: SimValue;
  /** Folder path under Objects/Simulation, e.g. `Line1/Press`. */
  folder?: string;
  /** Makes it an AnalogItem with this EURange (needed for percent deadbands). */
  euRange?: { low: number; high: number };
  /** Computed at every read instead of stored: `counter` = a new Double every read (benchmarks). */
  generator?: 'counter';
}

export type SecurityModeName = 'None' | 'Sign' | 'SignAndEncrypt';
export type SecurityPolicyName = 'None' | 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';

export interface OpcuaTestServerOptions {
  /** TCP port; 0 (default) picks a free one, kept across restarts. */
  port?: number;
  /** Folder for the server's PKI; default a temp folder removed by dispose(). */
  dir?: string;
  /** URI of the simulation namespace. Default `urn:lineguard:test:sim`. */
  namespaceUri?: string;
  /** Namespaces registered before the simulation namespace, to move its index (namespace order tests). */
  namespacesBefore?: string[];
  variables?: SimVariable[];
  /** `count` Double variables `<prefix>0..` with generator counter, under Objects/Simulation/Generated. */
  generated?: { count: number; prefix?: string };
  /** Offered security modes; default all three. */
  securityModes?: SecurityModeName[];
  /** Offered policies (None is added when mode None is offered); default all. */
  securityPolicies?: SecurityPolicyName[];
  /** username → password; when set, anonymous access is refused unless allowAnonymous. */
  users?: Record<string, string>;
  allowAnonymous?: boolean;
  /** Accept any client certificate (default true; tests of the client side do not test the server's PKI). */
  acceptAnyClientCertificate?: boolean;
}

const DEFAULT_NAMESPACE = 'urn:lineguard:test:sim';

let opcuaLoading: Promise<Opcua> | undefined;
const loadOpcua = (): Promise<Opcua> => (opcuaLoading ??= import('node-opcua'));

export class OpcuaTestServer {
  #options: OpcuaTestServerOptions & { port: number; dir: string };
  readonly #ownsDir: boolean;
  #opcua!: Opcua;
  #server: OPCUAServer | undefined;
  #namespace: Namespace | undefined;
  readonly #variables = new Map<string, UAVariable>();
  #root: UAObject | undefined;
  readonly #folders = new Map<string, UAObject>();
  #generatorOffset = 0;
  readonly #values = new Map<string, { value: SimValue; status?: string; sourceTimestamp?: Date }>();

  private constructor(options: OpcuaTestServerOptions, ownsDir: boolean, dir: string) {
    this.#options = { ...options, port: options.port ?? 0, dir };
    this.#ownsDir = ownsDir;
  }

  /** Starts a server; resolves when it accepts connections. */
  static async start(options: OpcuaTestServerOptions = {}): Promise<OpcuaTestServer> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'lineguard-opcua-server-'));
    const server = new OpcuaTestServer(options, ownsDir, dir);
    await server.#boot();
    return server;
  }

  get port(): number {
    return this.#options.port;
  }

  get endpoint(): string {
    return `opc.tcp://127.0.0.1:${this.#options.port}`;
  }

  get namespaceUri(): string {
    return this.#options.namespaceUri ?? DEFAULT_NAMESPACE;
  }

  /** Index of the simulation namespace in this run of the server. */
  get namespaceIndex(): number {
    if (!this.#namespace) throw new Error('server not running');
    return this.#namespace.index;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** `ns=<index>;s=<name>` for this run. */
  nodeId(name: string): string {
    return `ns=${this.namespaceIndex};s=${name}`;
  }

  /** `nsu=<uri>;s=<name>`: valid across restarts. */
  stableNodeId(name: string): string {
    return `nsu=${this.namespaceUri};s=${name}`;
  }

  /** DER of the server's application certificate. */
  certificate(): Buffer {
    if (!this.#server) throw new Error('server not running');
    return this.#server.getCertificate();
  }

  /** SHA-1 thumbprint (lowercase hex) of the server certificate, as `lineguard pki` shows it. */
  certificateThumbprint(): string {
    return createHash('sha1').update(this.certificate()).digest('hex');
  }

  get sessionCount(): number {
    return this.#server?.engine.currentSessionCount ?? 0;
  }

  get subscriptionCount(): number {
    return this.#server?.engine.currentSubscriptionCount ?? 0;
  }

  /** Monitored items over all sessions and subscriptions. */
  get monitoredItemCount(): number {
    const engine = this.#server?.engine as unknown as { currentSessionCount: number; getSessions?: () => Array<{ publishEngine: { subscriptions: Array<{ monitoredItemCount: number }> } }> } | undefined;
    const sessions = engine?.getSessions?.() ?? [];
    let n = 0;
    for (const s of sessions) for (const sub of s.publishEngine.subscriptions) n += sub.monitoredItemCount;
    return n;
  }

  /**
   * Sets a variable's value as a device would: with a status (a StatusCodes name such as `BadSensorFailure`) and a
   * source timestamp (default now). Kept across restarts.
   */
  setValue(name: string, value: SimValue, options: { status?: string; sourceTimestamp?: Date } = {}): void {
    const variable = this.#variables.get(name);
    const spec = this.#spec(name);
    if (!variable || !spec) throw new Error(`no simulated variable ${name}`);
    this.#values.set(name, { value, ...options });
    const o = this.#opcua;
    const status = options.status ? (o.StatusCodes as unknown as Record<string, import('node-opcua').StatusCode>)[options.status] : o.StatusCodes.Good;
    if (!status) throw new Error(`unknown status code ${options.status}`);
    variable.setValueFromSource(this.#variant(spec, value), status, options.sourceTimestamp ?? new Date());
  }

  /** Adds a variable while the server runs (a node that appears later); it is kept across restarts. */
  addVariable(spec: SimVariable): void {
    this.#options = { ...this.#options, variables: [...(this.#options.variables ?? []), spec] };
    if (this.#namespace) this.#addNode(spec);
  }

  /** Removes a variable from the address space (a tag whose node disappears); it stays gone across restarts. */
  deleteVariable(name: string): void {
    const variable = this.#variables.get(name);
    if (!variable || !this.#namespace) throw new Error(`no simulated variable ${name}`);
    this.#namespace.addressSpace.deleteNode(variable);
    this.#variables.delete(name);
    this.#options = { ...this.#options, variables: (this.#options.variables ?? []).filter((v) => v.name !== name) };
  }

  /** Shuts the server down (clients see the connection drop); restart() brings it back on the same port. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#namespace = undefined;
    this.#variables.clear();
    if (server) await server.shutdown(0);
  }

  /** Stops (if running) and starts again on the same port with the same certificate; `changes` alter the options. */
  async restart(changes: Partial<Omit<OpcuaTestServerOptions, 'port' | 'dir'>> = {}): Promise<void> {
    await this.stop();
    this.#options = { ...this.#options, ...changes };
    await this.#boot();
  }

  /** Stops and removes the temp folder this server created. */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.#ownsDir) rmSync(this.#options.dir, { recursive: true, force: true });
  }

  #spec(name: string): SimVariable | undefined {
    return this.#allVariables().find((v) => v.name === name);
  }

  #allVariables(): SimVariable[] {
    const o = this.#options;
    const generated: SimVariable[] = [];
    for (let i = 0; i < (o.generated?.count ?? 0); i++) {
      generated.push({ name: `${o.generated?.prefix ?? 'gen'}${i}`, dataType: 'Double', folder: 'Generated', generator: 'counter' });
    }
    return [...(o.variables ?? []), ...generated];
  }

  #variant(spec: SimVariable, value: SimValue): import('node-opcua').Variant {
    const o = this.#opcua;
    const dataType = o.DataType[spec.dataType];
    if (Array.isArray(value)) {
      return new o.Variant({ dataType, arrayType: o.VariantArrayType.Array, value: dataType === o.DataType.Double ? Float64Array.from(value) : value });
    }
    const raw = spec.dataType === 'Int64' || spec.dataType === 'UInt64' ? int64Words(value as number) : value;
    return new o.Variant({ dataType, arrayType: o.VariantArrayType.Scalar, value: raw });
  }

  #folderOf(folderPath: string | undefined): UAObject {
    const namespace = this.#namespace!;
    let parent = this.#root!;
    if (!folderPath) return parent;
    let sofar = '';
    for (const part of folderPath.split('/')) {
      sofar = sofar ? `${sofar}/${part}` : part;
      let folder = this.#folders.get(sofar);
      if (!folder) {
        folder = namespace.addFolder(parent, { browseName: part, nodeId: `s=Simulation/${sofar}` });
        this.#folders.set(sofar, folder);
      }
      parent = folder;
    }
    return parent;
  }

  #addNode(spec: SimVariable): void {
    const o = this.#opcua;
    const namespace = this.#namespace!;
    const remembered = this.#values.get(spec.name);
    const initial = remembered?.value ?? spec.value ?? defaultValue(spec.dataType);
    const common = { componentOf: this.#folderOf(spec.folder), browseName: spec.name, nodeId: `s=${spec.name}`, minimumSamplingInterval: 50 };
    let variable: UAVariable;
    if (spec.generator === 'counter') {
      const offset = this.#generatorOffset++;
      variable = namespace.addVariable({
        ...common,
        dataType: 'Double',
        value: { get: () => new o.Variant({ dataType: o.DataType.Double, value: Date.now() / 10 + offset }) },
      });
    } else if (spec.euRange) {
      variable = namespace.addAnalogDataItem({ ...common, dataType: spec.dataType, engineeringUnitsRange: spec.euRange, value: this.#variant(spec, initial) });
    } else {
      variable = namespace.addVariable({
        ...common,
        dataType: spec.dataType,
        ...(Array.isArray(initial) ? { valueRank: 1, arrayDimensions: [initial.length] } : {}),
      });
    }
    if (spec.generator !== 'counter') {
      const status = remembered?.status ? (o.StatusCodes as unknown as Record<string, import('node-opcua').StatusCode>)[remembered.status]! : o.StatusCodes.Good;
      variable.setValueFromSource(this.#variant(spec, initial), status, remembered?.sourceTimestamp ?? new Date());
    }
    this.#variables.set(spec.name, variable);
  }

  async #boot(): Promise<void> {
    const o = (this.#opcua = await loadOpcua());
    const opts = this.#options;
    const modes = opts.securityModes ?? ['None', 'Sign', 'SignAndEncrypt'];
    const policies = opts.securityPolicies ?? ['Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss'];
    const offeredPolicies = new Set<SecurityPolicyName>(policies.filter((p) => p !== 'None'));
    if (modes.includes('None')) offeredPolicies.add('None');
    const serverCertificateManager = new o.OPCUACertificateManager({
      rootFolder: path.join(opts.dir, 'pki'),
      automaticallyAcceptUnknownCertificate: opts.acceptAnyClientCertificate ?? true,
      disableFileWatchers: true,
    });
    const userCertificateManager = new o.OPCUACertificateManager({
      rootFolder: path.join(opts.dir, 'user-pki'),
      automaticallyAcceptUnknownCertificate: true,
      disableFileWatchers: true,
    });
    const users = opts.users;
    const server = new o.OPCUAServer({
      port: opts.port,
      hostname: '127.0.0.1',
      alternateHostname: ['127.0.0.1'],
      nodeset_filename: [o.nodesets.standard],
      serverCertificateManager,
      userCertificateManager,
      securityModes: modes.map((m) => o.MessageSecurityMode[m]),
      securityPolicies: [...offeredPolicies].map((p) => o.SecurityPolicy[p]),
      allowAnonymous: opts.allowAnonymous ?? users === undefined,
      ...(users ? { userManager: { isValidUser: (u: string, p: string) => users[u] === p } } : {}),
      serverInfo: { applicationUri: 'urn:lineguard:test:opcua-server', applicationName: { text: 'Lineguard test server' } },
      buildInfo: { productName: 'Lineguard test server' },
      serverCapabilities: { maxSessions: 50 },
    });
    await server.initialize();
    const addressSpace = server.engine.addressSpace!;
    for (const uri of opts.namespacesBefore ?? []) addressSpace.registerNamespace(uri);
    const namespace = addressSpace.registerNamespace(this.namespaceUri);
    this.#namespace = namespace;
    this.#root = namespace.addFolder(addressSpace.rootFolder.objects, { browseName: 'Simulation', nodeId: 's=Simulation' });
    this.#folders.clear();
    this.#generatorOffset = 0;
    for (const spec of this.#allVariables()) this.#addNode(spec);
    await server.start();
    this.#server = server;
    if (opts.port === 0) opts.port = server.endpoints[0]!.port;
  }
}

function defaultValue(dataType: SimDataType): SimValue {
  if (dataType === 'Boolean') return false;
  if (dataType === 'String') return '';
  if (dataType === 'DateTime') return new Date(0);
  if (dataType === 'ByteString') return Buffer.alloc(0);
  return 0;
}

function int64Words(value: number): [number, number] {
  const high = Math.floor(value / 4294967296);
  const low = value - high * 4294967296;
  return [high < 0 ? high + 4294967296 : high, low];
}

// ---------------------------------------------------------------------------------------------------------------
// Child-process mode (benchmarks: the server's CPU must not be counted as the client's).

/** What a server in a child process reports once it listens. */
export interface ChildOpcuaTestServer {
  endpoint: string;
  port: number;
  namespaceUri: string;
  namespaceIndex: number;
  pid: number;
  /** `nsu=` node id of a simulated variable. */
  stableNodeId(name: string): string;
  /** Sends SIGTERM and waits for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

const CHILD_FLAG = '--lineguard-opcua-test-server';

/** Starts a server in a child process running the compiled module; `options` must be JSON. */
export async function spawnOpcuaTestServer(options: OpcuaTestServerOptions = {}): Promise<ChildOpcuaTestServer> {
  const script = compiledScript();
  const child = spawn(process.execPath, [script, CHILD_FLAG, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = await new Promise<{ endpoint: string; port: number; namespaceUri: string; namespaceIndex: number }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error('the OPC UA test server did not start within 60 s')), 60_000);
    lines.on('line', (line) => {
      if (!line.startsWith('{"ready"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as { endpoint: string; port: number; namespaceUri: string; namespaceIndex: number });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the OPC UA test server exited with code ${code} before it was ready`));
    });
  });
  return {
    ...ready,
    pid: child.pid!,
    stableNodeId: (name) => `nsu=${ready.namespaceUri};s=${name}`,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The compiled JS of this module (a child process cannot run the TypeScript source on Node 20). */
function compiledScript(): string {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.js')) return self;
  const root = path.resolve(path.dirname(self), '..', '..');
  const js = path.join(root, 'dist', 'test', 'support', 'opcua-server.js');
  if (!existsSync(js)) throw new Error(`${js} is missing: run npm run build first (the child-process server runs compiled code)`);
  return js;
}

async function childMain(optionsJson: string): Promise<void> {
  const server = await OpcuaTestServer.start(JSON.parse(optionsJson) as OpcuaTestServerOptions);
  const shutdown = (): void => {
    void server.dispose().finally(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.stdout.write(`${JSON.stringify({ ready: true, endpoint: server.endpoint, port: server.port, namespaceUri: server.namespaceUri, namespaceIndex: server.namespaceIndex })}\n`);
}

if (process.argv[2] === CHILD_FLAG && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  childMain(process.argv[3] ?? '{}').catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
