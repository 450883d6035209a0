import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SourceClockState } from '../core/source-clock.js';
import type { ComponentHealth } from '../core/component.js';
import type { GatewayState } from './gateway-health.js';

export interface HealthReport {
  /** The gateway as a whole (README "Observability"): only `down` answers 503. */
  status: GatewayState;
  gateway: string;
  uptimeS: number;
  /** Why the gateway is not up: what stops it doing its job first, then one line per component that is not up. */
  reasons: string[];
  components: Record<string, ComponentHealth>;
  /** Every source's clock: offset, steps, restamped samples (src/core/source-clock.ts). */
  clocks?: SourceClockState[];
}

/**
 * `/metrics` (Prometheus text format) and `/healthz` (JSON: the gateway's state, every component's state and reason;
 * HTTP 200 for starting, up and degraded, 503 only for down — the gateway cannot do its job). Bound to localhost by
 * default: it tells anyone who can reach it what the plant runs.
 */
export class HealthServer {
  #server: Server | undefined;

  constructor(
    private readonly options: { host: string; port: number },
    private readonly registry: Registry,
    private readonly report: () => HealthReport,
    private readonly log: Logger,
    /** The status page at `/` and its JSON under `/api/` (status-page.ts); answers the requests that are its own. */
    private readonly page?: { handle(req: IncomingMessage, res: ServerResponse): boolean },
  ) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/metrics') {
        try {
          // The report sets the gauges derived from component health (lineguard_component_up): fresh at every scrape.
          this.report();
        } catch (err) {
          this.log.error({ err }, 'health report failed');
        }
        this.registry
          .metrics()
          .then((text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text))
          .catch((err: unknown) => {
            this.log.error({ err }, 'collecting metrics failed');
            res.writeHead(500).end();
          });
        return;
      }
      if (url === '/healthz') {
        let body: string;
        let status: number;
        try {
          const report = this.report();
          body = `${JSON.stringify(report, null, 2)}\n`;
          // 200 for starting, up and degraded: a load balancer or a watchdog acting on 503 must act only when the
          // gateway cannot do its job, not for a bad tag or a warm-up.
          status = report.status === 'down' ? 503 : 200;
        } catch (err) {
          // A throw here would be an uncaught exception, and stop the gateway for a broken health detail.
          this.log.error({ err }, 'health report failed');
          body = `${JSON.stringify({ status: 'down', reasons: [`health report failed: ${(err as Error).message}`] })}\n`;
          status = 500;
        }
        res.writeHead(status, { 'content-type': 'application/json' }).end(body);
        return;
      }
      try {
        if (this.page?.handle(req, res)) return;
      } catch (err) {
        this.log.error({ err, url }, 'status page failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end();
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: try /metrics or /healthz${this.page ? ' or /' : ''}\n`);
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err }, 'http server error'));
    this.#server = server;
  }

  get port(): number | undefined {
    return (this.#server?.address() as AddressInfo | null)?.port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
