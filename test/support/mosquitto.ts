/**
 * A private Mosquitto broker for tests that must stop, restart or configure their broker (persistence, queue
 * limits, TLS, passwords), and `brokerUrl()` for tests that only need some broker.
 *
 * The broker runs `/usr/sbin/mosquitto` (or $MOSQUITTO_BIN) with a generated config in a temp dir, on free ports
 * of 127.0.0.1. Mosquitto started as root drops to the `mosquitto` user unless told `user root`; we tell it the
 * user we run as so it can write its persistence file and log in our temp dir.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

/**
 * URL of the shared broker for this test run: `MQTT_URL` as set by the environment (CI) or by
 * test/global-setup.ts, which starts a private broker when nothing listens on 127.0.0.1:1883.
 */
export function brokerUrl(): string {
  const url = process.env.MQTT_URL;
  if (!url) throw new Error('MQTT_URL is not set: is test/global-setup.ts listed in vitest.config.ts globalSetup?');
  return url;
}

/** A port nobody listens on right now (the kernel picks it; a tiny race with other processes remains). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on host:port within `timeoutMs`. */
export async function isListening(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** TLS listener settings: PEM files for the broker, and whether clients must present a certificate. */
export interface MosquittoTlsOptions {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Require a client certificate signed by `caFile`. */
  requireCertificate?: boolean;
}

export interface MosquittoOptions {
  /**
   * Mosquitto's per-client queue limit for QoS 1/2 messages to offline or slow clients. Its default (1000) silently
   * drops messages (STACK-NOTES); 0 = unlimited, the default here so tests can count deliveries.
   */
  maxQueuedMessages?: number;
  /** Keep retained messages and persistent sessions across restarts (saved on shutdown). Default true. */
  persistence?: boolean;
  /** Also listen with TLS on a second port. */
  tls?: MosquittoTlsOptions;
  /** username → password; when given, anonymous clients are refused. */
  users?: Record<string, string>;
  /** Listen on this port instead of a free one (to start a broker where a client already waits). */
  port?: number;
  /** Log every packet (`log_type all`), so a test can count what the broker received (`publishesFrom`). */
  logPackets?: boolean;
}

/** Certificates made by `makeTestPki`. */
export interface TestPki {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** A CA that signed nothing here: a client trusting only it must refuse the broker. */
  otherCaFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  await execFileAsync('openssl', args, { cwd });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

async function makeLeaf(dir: string, name: string, ca: string, extensions: string): Promise<void> {
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
}

/**
 * A throwaway PKI made with openssl: a CA, a broker certificate for `localhost`/127.0.0.1 (so a client checking
 * any other name must refuse it), a client certificate, and an unrelated CA.
 */
export async function makeTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'lineguard-pki-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await makeLeaf(dir, 'server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await makeLeaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    otherCaFile: join(dir, 'other-ca.crt'),
  };
}

/** A Mosquitto process with its own config, ports and persistence directory. */
export class Mosquitto {
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #frozen = false;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly tlsPort: number | undefined,
    private readonly configFile: string,
  ) {}

  /** Starts a broker and resolves once it accepts connections. */
  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const dir = await mkdtemp(join(tmpdir(), 'lineguard-mosquitto-'));
    const port = options.port ?? (await freePort());
    const tlsPort = options.tls ? await freePort() : undefined;
    const lines = [
      `user ${userInfo().username}`,
      `persistence ${options.persistence === false ? 'false' : 'true'}`,
      `persistence_location ${dir}/`,
      // Only save on shutdown: tests restart the broker with SIGTERM, which saves.
      'autosave_interval 0',
      `max_queued_messages ${options.maxQueuedMessages ?? 0}`,
      'max_queued_bytes 0',
      `log_dest file ${join(dir, 'mosquitto.log')}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      ...(options.logPackets ? ['log_type all'] : []),
      'connection_messages true',
      `listener ${port} 127.0.0.1`,
    ];
    if (options.users) {
      const passwordFile = join(dir, 'passwd');
      await writeFile(passwordFile, '');
      for (const [user, password] of Object.entries(options.users)) {
        await execFileAsync('mosquitto_passwd', ['-b', passwordFile, user, password]);
      }
      lines.push('allow_anonymous false', `password_file ${passwordFile}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (options.tls && tlsPort) {
      lines.push(
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${options.tls.caFile}`,
        `certfile ${options.tls.certFile}`,
        `keyfile ${options.tls.keyFile}`,
        `require_certificate ${options.tls.requireCertificate ? 'true' : 'false'}`,
      );
    }
    const configFile = join(dir, 'mosquitto.conf');
    await writeFile(configFile, lines.join('\n') + '\n');
    const broker = new Mosquitto(dir, port, tlsPort, configFile);
    await broker.#launch();
    return broker;
  }

  /** `mqtt://127.0.0.1:<port>`. */
  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** `mqtts://localhost:<tlsPort>` (the broker certificate names localhost). */
  get tlsUrl(): string {
    if (!this.tlsPort) throw new Error('this broker has no TLS listener');
    return `mqtts://localhost:${this.tlsPort}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** PUBLISH packets the broker received from a client so far (needs `logPackets`). */
  async publishesFrom(clientId: string): Promise<number> {
    const needle = `Received PUBLISH from ${clientId} `;
    return (await this.log()).split('\n').filter((line) => line.includes(needle)).length;
  }

  /** The broker's log so far (for failure messages). */
  async log(): Promise<string> {
    return readFile(join(this.dir, 'mosquitto.log'), 'utf8').catch(() => '');
  }

  async #launch(): Promise<void> {
    const child = spawn(MOSQUITTO_BIN, ['-c', this.configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    let exitedEarly = false;
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        exitedEarly = true;
        resolve();
      });
    });
    this.#child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exitedEarly) {
        this.#child = undefined;
        throw new Error(`mosquitto exited at start: ${stderr}${await this.log()}`);
      }
      const ports = [this.port, ...(this.tlsPort ? [this.tlsPort] : [])];
      const up = await Promise.all(ports.map((p) => isListening(p)));
      if (up.every(Boolean)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`mosquitto did not listen within 10 s: ${stderr}${await this.log()}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /**
   * Freezes this broker process (SIGSTOP): its sockets stay open and the kernel keeps accepting bytes, but nothing is
   * read or answered — a hung broker as clients see it. Only ever this test's own child process.
   */
  freeze(): void {
    if (!this.#child) throw new Error('the broker is not running');
    this.#child.kill('SIGSTOP');
    this.#frozen = true;
  }

  /** Lets a frozen broker run again (SIGCONT); it then reads what piled up in its sockets. */
  thaw(): void {
    if (!this.#child || !this.#frozen) return;
    this.#child.kill('SIGCONT');
    this.#frozen = false;
  }

  /**
   * Stops the broker: SIGTERM (Mosquitto saves its persistence file, then exits), or SIGKILL for a crash.
   * Resolves when the process has exited. A frozen broker is thawed first, or it would not see the SIGTERM.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    child.kill(signal);
    if (this.#frozen) {
      child.kill('SIGCONT');
      this.#frozen = false;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Stops (saving its state) and starts again on the same ports. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Starts a stopped broker again on the same ports, with the same persistence directory. */
  async start(): Promise<void> {
    if (this.#child) return;
    await this.#launch();
  }

  /** Stops the broker and deletes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
