import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { checkAccess, isOpen, type StatusPageAccess } from './status-page-auth.js';
import { StatusPageData, type StatusSources } from './status-page-data.js';

/**
 * The page's static files: plain HTML, CSS and JS, no build step. Served from the source tree (src/daemon/status-page/,
 * shipped by packaging/lib.mjs), also when the daemon runs from dist/ (tsc does not copy them).
 */
const HERE = path.dirname(fileURLToPath(import.meta.url));
export const STATUS_PAGE_DIR = HERE.split(path.sep).includes('dist')
  ? path.resolve(HERE, '../../../src/daemon/status-page')
  : path.join(HERE, 'status-page');
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'status-page.css': 'text/css; charset=utf-8',
  'status-page.js': 'text/javascript; charset=utf-8',
  'sparkline.js': 'text/javascript; charset=utf-8',
};
/** Only this origin: no CDN, no inline script; the page works on a plant network without internet. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * The local status page at `/` (README "Observability") and the read-only JSON it polls: `/api/status`,
 * `/api/tags?q=`, `/api/outputs?model=&since=`. Nothing it serves changes state; access is checked when
 * `http.statusPage` has a token or basic auth.
 */
export class StatusPage {
  readonly #data: StatusPageData;
  readonly #files = new Map<string, Buffer>();

  constructor(
    private readonly access: StatusPageAccess & { host: string },
    sources: StatusSources,
    private readonly log: Logger,
  ) {
    this.#data = new StatusPageData(sources);
    for (const name of Object.keys(FILES)) {
      try {
        this.#files.set(name, readFileSync(path.join(STATUS_PAGE_DIR, name)));
      } catch (err) {
        this.log.error({ err, dir: STATUS_PAGE_DIR }, `status page file ${name} is missing: the page at / will not load`);
      }
    }
    if (isOpen(access) && !isLoopback(access.host)) {
      this.log.warn(
        { host: access.host },
        'the status page is served on a non-loopback address without a token or basic auth (http.statusPage): anyone who reaches the port sees what the plant runs',
      );
    }
  }

  /** Answers the request when it is the page's; false to let the HTTP server answer it. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://status.invalid');
    const route = url.pathname;
    const name = route === '/' ? 'index.html' : route.startsWith('/status-page/') ? route.slice('/status-page/'.length) : undefined;
    const api = route === '/api/status' || route === '/api/tags' || route === '/api/outputs';
    if (name === undefined && !api) return false;
    if (!checkAccess(this.access, req, res, url)) return true;
    if (name !== undefined) {
      const type = FILES[name];
      const body = type ? this.#files.get(name) : undefined;
      if (!type || !body) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return true;
      }
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache', ...SECURITY_HEADERS }).end(req.method === 'HEAD' ? undefined : body);
      return true;
    }
    try {
      this.#json(res, this.#api(route, url.searchParams));
    } catch (err) {
      // A broken detail must not take the endpoint (or the process) down: the page shows the error and polls again.
      this.log.error({ err, route }, 'status page data failed');
      res.writeHead(500, { 'content-type': 'application/json' }).end(`${JSON.stringify({ error: (err as Error).message })}\n`);
    }
    return true;
  }

  close(): void {
    this.#data.close();
  }

  #api(route: string, q: URLSearchParams): unknown {
    if (route === '/api/tags') return this.#data.tags(q.get('q') ?? '');
    if (route === '/api/outputs') {
      const model = q.get('model') ?? '';
      const since = Number(q.get('since') ?? Number.NaN);
      return { model, ...this.#data.outputs(model, Number.isFinite(since) ? since : Date.now() - 10 * 60_000) };
    }
    return this.#data.status();
  }

  #json(res: ServerResponse, body: unknown): void {
    // NaN and Infinity are not JSON: written as strings, as `lineguard outputs --json` does.
    const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', ...SECURITY_HEADERS }).end(text);
  }
}

/** 127.0.0.0/8, ::1 and localhost: where the page needs no access check to be as private as /metrics. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
