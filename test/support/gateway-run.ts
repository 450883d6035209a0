import { DaemonProcess } from './daemon-process.js';

/** The body of /healthz (README "Observability"). */
export interface HealthBody {
  status: string;
  reasons: string[];
  components: Record<string, { state: string; reason?: string; details?: Record<string, unknown> }>;
}

export interface HealthAnswer {
  code: number;
  body: HealthBody;
}

/**
 * One `lineguard run` process on a config file with `http: { port: 0 }`, started and waited for as systemd would
 * (the HTTP endpoint it logs, then "lineguard ready"), with /healthz polling. Run it again on the same file after a
 * kill to restart on the same state dir.
 */
export class GatewayRun {
  private constructor(
    readonly file: string,
    readonly daemon: DaemonProcess,
    readonly baseUrl: string,
  ) {}

  static async start(file: string, timeoutMs = 30_000): Promise<GatewayRun> {
    const daemon = new DaemonProcess(['run', '--config', file]);
    try {
      const serving = await daemon.waitForMessage('serving /metrics and /healthz', timeoutMs);
      await daemon.waitForMessage('lineguard ready', timeoutMs);
      return new GatewayRun(file, daemon, String(serving.url));
    } catch (err) {
      await daemon.kill();
      throw err;
    }
  }

  async healthz(): Promise<HealthAnswer> {
    const res = await fetch(`${this.baseUrl}/healthz`);
    return { code: res.status, body: (await res.json()) as HealthBody };
  }

  /** Polls /healthz until `ok` holds; rejects after `timeoutMs` with the last answer. */
  async pollHealth(ok: (h: HealthAnswer) => boolean, what: string, timeoutMs = 15_000): Promise<HealthAnswer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const h = await this.healthz();
      if (ok(h)) return h;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${h.code} ${JSON.stringify(h.body)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL (if still running) and wait for the exit. */
  async kill(): Promise<void> {
    await this.daemon.kill();
  }
}
