import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { DaemonProcess } from '../../support/daemon-process.js';

/** `reload: { watchFile: true }`: an editor's save (write a temp file, rename it over) reloads the config. */
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-watch-'));
const configFile = path.join(dir, 'lineguard.yaml');
let daemon: DaemonProcess | undefined;
afterAll(async () => {
  await daemon?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const config = (flushIntervalMs: number): string =>
  `gateway: { id: watch-test, stateDir: ${JSON.stringify(path.join(dir, 'state'))} }\nhttp: { enabled: false }\nreload: { watchFile: true }\nbuffer: { flushIntervalMs: ${flushIntervalMs} }\n`;

it('a saved change to the file reloads it, restarting only what changed', async () => {
  writeFileSync(configFile, config(250));
  daemon = new DaemonProcess(['run', '--config', configFile]);
  await daemon.waitForMessage('lineguard ready');
  const temp = path.join(dir, '.lineguard.yaml.swp');
  writeFileSync(temp, config(500));
  renameSync(temp, configFile);
  const reloading = await daemon.waitForMessage('reloading config', 10_000);
  expect(reloading.trigger).toBe('file change');
  const reloaded = await daemon.waitForMessage('config reloaded', 10_000);
  expect(reloaded.restarted).toEqual(['buffer']);
  daemon.signal('SIGTERM');
  expect((await daemon.exit).code).toBe(0);
});
