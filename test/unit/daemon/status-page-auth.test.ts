import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { checkAccess, TOKEN_COOKIE, type StatusPageAccess } from '../../../src/daemon/status-page-auth.js';

/** The status page's access check over a real HTTP server: token (header, ?token= then cookie) and basic auth. */
let server: Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

async function serve(access: StatusPageAccess): Promise<string> {
  server = createServer((req, res) => {
    if (checkAccess(access, req, res, new URL(req.url ?? '/', 'http://x'))) res.writeHead(200).end('ok');
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

describe('status page access', () => {
  it('is open when neither a token nor basic auth is configured', async () => {
    expect((await fetch(await serve({}))).status).toBe(200);
  });

  it('takes the token as a bearer header, or once as ?token= moved into an HttpOnly cookie', async () => {
    const base = await serve({ token: 'a-long-enough-token' });
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/`, { headers: { authorization: 'Bearer a-long-enough-token' } })).status).toBe(200);
    expect((await fetch(`${base}/`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const redirect = await fetch(`${base}/?token=a-long-enough-token&x=1`, { redirect: 'manual' });
    expect(redirect.status).toBe(303);
    expect(redirect.headers.get('location')).toBe('/?x=1');
    const cookie = redirect.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^${TOKEN_COOKIE}=a-long-enough-token; HttpOnly; SameSite=Strict`));
    expect((await fetch(`${base}/api/status`, { headers: { cookie: cookie.split(';')[0]! } })).status).toBe(200);
    expect((await fetch(`${base}/?token=wrong`, { redirect: 'manual' })).status).toBe(401);
  });

  it('asks for basic auth and accepts only the right user and password', async () => {
    const base = await serve({ basicAuth: { username: 'line', password: 'secret-pw' } });
    const refused = await fetch(base);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const basic = (s: string) => ({ authorization: `Basic ${Buffer.from(s).toString('base64')}` });
    expect((await fetch(base, { headers: basic('line:secret-pw') })).status).toBe(200);
    expect((await fetch(base, { headers: basic('line:wrong') })).status).toBe(401);
    expect((await fetch(base, { headers: basic('other:secret-pw') })).status).toBe(401);
  });
});
