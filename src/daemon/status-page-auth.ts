import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The cookie that carries the shared token after the first `/?token=...`: fetches of the page then need no header. */
export const TOKEN_COOKIE = 'lineguard_status';

/** What `http.statusPage` configures for access (README "Observability"); both unset: no check, like /metrics. */
export interface StatusPageAccess {
  /** Shared token: `Authorization: Bearer <token>`, `?token=<token>` once (sets a cookie), or the cookie. */
  token?: string;
  /** HTTP basic auth (the browser asks for it). */
  basicAuth?: { username: string; password: string };
}

/** True when no check is configured. */
export function isOpen(access: StatusPageAccess): boolean {
  return access.token === undefined && access.basicAuth === undefined;
}

/**
 * Checks a request against the configured access; on refusal it has answered 401 (with a basic-auth challenge when
 * basic auth is configured, so a browser asks) and returns false. A `?token=` that matches is moved into an
 * HttpOnly cookie by a redirect, so the token does not stay in the address bar, the history or a screenshot.
 */
export function checkAccess(access: StatusPageAccess, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  if (isOpen(access)) return true;
  const authorization = req.headers.authorization ?? '';
  if (access.token !== undefined) {
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null && same(queryToken, access.token)) {
      url.searchParams.delete('token');
      res.writeHead(303, {
        location: `${url.pathname}${url.search}`,
        'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(access.token)}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
      }).end();
      return false;
    }
    const bearer = /^Bearer\s+(.+)$/i.exec(authorization)?.[1];
    if (bearer !== undefined && same(bearer, access.token)) return true;
    const cookie = cookieValue(req.headers.cookie, TOKEN_COOKIE);
    if (cookie !== undefined && same(cookie, access.token)) return true;
  }
  if (access.basicAuth !== undefined) {
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization)?.[1];
    if (basic !== undefined) {
      const decoded = Buffer.from(basic, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      // Both compared, always: the time taken does not tell which of the two was wrong.
      const userOk = same(decoded.slice(0, Math.max(colon, 0)), access.basicAuth.username);
      const passOk = same(decoded.slice(colon + 1), access.basicAuth.password);
      if (colon >= 0 && userOk && passOk) return true;
    }
  }
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' };
  if (access.basicAuth !== undefined) headers['www-authenticate'] = 'Basic realm="Lineguard status", charset="UTF-8"';
  res.writeHead(401, headers).end(
    access.basicAuth !== undefined ? 'unauthorized\n' : 'unauthorized: open the page once as /?token=<the token of http.statusPage.token>\n',
  );
  return false;
}

/** Constant-time comparison (of digests: timingSafeEqual needs equal lengths, and the length must not leak either). */
function same(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
