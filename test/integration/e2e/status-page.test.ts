import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../../src/daemon/daemon.js';
import { loadConfigFile } from '../../../src/daemon/config/load.js';
import { createLogger, SecretRedactor } from '../../../src/daemon/logger.js';
import { OpcuaTestServer } from '../../support/opcua-server.js';

/**
 * The status page at / (README "Observability") in a real headless Chromium (Debian's chromium, driven by
 * playwright-core): against `lineguard demo` as a process (models with their provider, an alert appearing without a
 * reload), and against an in-process daemon whose OPC UA server is stopped (the source shows as down), with the
 * page's token. The browser console must stay free of errors throughout.
 */
const CHROMIUM = '/usr/bin/chromium';
const BIN = path.resolve('bin/lineguard');
const TOKEN = 'status-page-test-token-0123456789';
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-status-page-test-'));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`status page browser test skipped: ${CHROMIUM} is absent (apt-get install chromium)`);

let browser: Browser | undefined;
let demo: ChildProcess | undefined;
let demoOut = '';
let daemon: Daemon | undefined;
let server: OpcuaTestServer | undefined;
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!haveChromium) return;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  });
}, 30_000);

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await new Promise((resolve) => demo!.once('exit', resolve));
  }
  await daemon?.stop();
  await server?.dispose();
  // The screenshots stay (their path is printed); the gateways' state goes.
  for (const sub of ['demo-state', 'gw']) rmSync(path.join(dir, sub), { recursive: true, force: true });
}, 30_000);

async function openPage(url: string): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1366, height: 768 } });
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`page error: ${err.message}`));
  await page.goto(url);
  return page;
}

async function screenshot(page: Page, name: string): Promise<void> {
  const file = path.join(dir, name);
  await page.screenshot({ path: file, fullPage: true });
  const size = statSync(file).size;
  console.log(`status page screenshot: ${file} (${size} bytes)`);
  // A blank 1366-wide page is a few kB; a full one is tens to hundreds; many MB would be something else.
  expect(size).toBeGreaterThan(10_000);
  expect(size).toBeLessThan(15_000_000);
}

describe.skipIf(!haveChromium)('status page in headless Chromium', () => {
  it('shows the demo models with their provider and a demo alert within seconds, without reload', { timeout: 60_000 }, async () => {
    demo = spawn(process.execPath, [BIN, 'demo', '--state-dir', path.join(dir, 'demo-state'), '--http-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    demo.stdout!.setEncoding('utf8').on('data', (c: string) => { demoOut += c; });
    const url = await waitFor(() => /status page: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(demoOut)?.[1], 30_000, () => `the status page URL in the demo's output:\n${demoOut}`);
    expect(demoOut).toMatch(/mosquitto_sub -h 127\.0\.0\.1/);
    const page = await openPage(url);

    for (const model of ['press-fault', 'engine-rul']) {
      const card = page.locator(`.card[data-model="${model}"]`);
      await card.waitFor({ timeout: 15_000 });
      await expect.poll(() => card.locator('[data-provider]').textContent(), { timeout: 15_000 }).toBe('cpu');
    }

    // The next alert the demo prints after the page loaded must show up on the page, with no reload in between.
    const printedBefore = demoOut.length;
    const message = await waitFor(() => {
      const line = demoOut.slice(printedBefore).split('\n').find((l) => / RAISED /.test(l));
      return line?.slice(line.indexOf(': ') + 2).trim();
    }, 20_000, () => `a RAISED line in the demo output:\n${demoOut.slice(printedBefore)}`);
    const printedAt = Date.now();
    await page.locator('#alerts-recent li[data-alert-state="raised"]', { hasText: message }).first().waitFor({ timeout: 8_000 });
    console.log(`status page: a demo alert appeared ${Date.now() - printedAt} ms after the demo printed it`);
    expect(await page.locator('#gateway').textContent()).toBe('Lineguard demo-line');
    await expect.poll(() => page.locator('.chart svg path.spark-line').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await screenshot(page, 'status-page-demo.png');
    await page.close();
    expect(consoleErrors).toEqual([]);
  });

  it('shows a stopped OPC UA server as down, behind the page token', { timeout: 45_000 }, async () => {
    server = await OpcuaTestServer.start({ securityModes: ['None'], variables: [{ name: 'Speed', dataType: 'Double', value: 1 }] });
    const stateDir = path.join(dir, 'gw');
    mkdirSync(stateDir, { recursive: true });
    const file = path.join(stateDir, 'lineguard.yaml');
    process.env.LINEGUARD_TEST_STATUS_TOKEN = TOKEN;
    writeFileSync(file, `gateway: { id: page-gw, stateDir: ${JSON.stringify(stateDir)} }
http: { port: 0, statusPage: { token: "\${env:LINEGUARD_TEST_STATUS_TOKEN}" } }
opcua:
  - name: plc1
    endpoint: ${server.endpoint}
    security: { mode: None, policy: None }
    tags:
      - { tag: press.speed, nodeId: "${server.stableNodeId('Speed')}" }
`);
    const loaded = loadConfigFile(file);
    if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
    const redactor = new SecretRedactor();
    const quiet = new Writable({ write: (_c, _e, done) => done() });
    daemon = new Daemon(file, loaded, createLogger({ level: 'warn', destination: quiet }, redactor), redactor);
    await daemon.start();
    const base = `http://127.0.0.1:${daemon.httpPort}`;

    // Without the token: refused (the page and its JSON), while /healthz stays open for watchdogs.
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/api/status`)).status).toBe(401);
    expect((await fetch(`${base}/api/status`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${base}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    // ?token= once: the browser is redirected to / with the token in a cookie, and the page polls with it.
    const page = await openPage(`${base}/?token=${TOKEN}`);
    expect(new URL(page.url()).search).toBe('');
    const row = page.locator('#sources-body tr[data-source="opcua/plc1"]');
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 15_000 }).toBe('up');
    await server.stop();
    const stoppedAt = Date.now();
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 20_000 }).toBe('down');
    console.log(`status page: the stopped OPC UA server showed as down after ${Date.now() - stoppedAt} ms`);
    expect(await row.locator('.badge').first().textContent()).toBe('down');
    await screenshot(page, 'status-page-source-down.png');
    await page.close();
    expect(consoleErrors).toEqual([]);
  });
});

async function waitFor<T>(get: () => T | undefined, ms: number, what: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
