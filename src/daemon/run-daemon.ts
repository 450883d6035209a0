import { mkdirSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { EXIT, type CliIo } from '../core/cli-command.js';
import { loadConfigFile } from './config/load.js';
import { Daemon, STOP_BUDGET_MS } from './daemon.js';
import { createLogger, SecretRedactor } from './logger.js';
import { SystemdNotifier } from './systemd-notify.js';

/**
 * Hard bound on shutdown: the daemon's own stop budget plus a margin, under the unit's TimeoutStopSec=20 s
 * (systemd/lineguard.service). It only fires if a stop phase hangs past its bound, which Daemon.stop() prevents.
 */
const SHUTDOWN_DEADLINE_MS = STOP_BUDGET_MS + 2_000;
/**
 * After a clean stop, the process should exit on its own. A library that keeps a socket or timer alive (a node-opcua
 * client still connecting to an unreachable PLC after its source gave up waiting for it) would hold it until systemd
 * kills it: by then the buffer is committed and closed, so exit anyway.
 */
const EXIT_LINGER_MS = 1_000;

/**
 * `lineguard run`: the process around the Daemon — config at start, logger, signals, file watch, systemd
 * notify and watchdog, and a shutdown that always ends within the unit's TimeoutStopSec.
 */
export async function runDaemon(configFile: string, io: CliIo): Promise<number> {
  const loaded = loadConfigFile(configFile);
  if (!loaded.ok) {
    for (const line of loaded.errors) io.err(line);
    io.err(`${configFile}: ${loaded.errors.length} config error(s); not starting (exit 78)`);
    return EXIT.CONFIG;
  }
  const stateDir = loaded.config.gateway.stateDir;
  try {
    mkdirSync(stateDir, { recursive: true });
  } catch (err) {
    // A wrong path or missing permission: restarting would not fix it, so it exits like a bad config (no restart loop).
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    io.err(`${configFile}: gateway.stateDir: cannot create ${stateDir} (${code}); fix the path, or create it writable for the service user`);
    io.err(`${configFile}: not starting (exit 78)`);
    return EXIT.CONFIG;
  }
  const redactor = new SecretRedactor();
  redactor.set(loaded.secrets);
  const log = createLogger({ level: loaded.config.log.level, pretty: process.stdout.isTTY === true }, redactor);
  const notifier = new SystemdNotifier(log.child({ component: 'systemd' }));
  log.info({ config: path.resolve(configFile), gateway: loaded.config.gateway.id, node: process.version }, 'lineguard starting');

  const daemon = new Daemon(configFile, loaded, log, redactor);
  let exitCode: number = EXIT.OK;
  let shuttingDown = false;
  let watcher: FSWatcher | undefined;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });

  const shutdown = (signal: string, code: number = EXIT.OK): void => {
    if (shuttingDown) return;
    shuttingDown = true;
    exitCode = code;
    log.info({ signal }, 'stopping');
    notifier.stopping();
    notifier.stopWatchdog();
    watcher?.close();
    const deadline = setTimeout(() => {
      log.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown took too long; exiting anyway');
      log.flush();
      process.exit(exitCode === EXIT.OK ? EXIT.SOFTWARE : exitCode);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    daemon
      .stop()
      .catch((err: unknown) => log.error({ err }, 'error while stopping'))
      .finally(() => {
        clearTimeout(deadline);
        done();
      });
  };

  const reload = (trigger: string): void => {
    if (shuttingDown) return;
    log.info({ trigger }, 'reloading config');
    notifier.reloading();
    daemon
      .reload()
      .then((r) => notifier.ready(r.ok ? 'config reloaded' : `config reload refused (${r.errors.length} errors); running on the previous config`))
      .catch((err: unknown) => log.error({ err }, 'config reload failed'));
  };

  const onTerm = (): void => shutdown('SIGTERM');
  const onInt = (): void => shutdown('SIGINT');
  const onHup = (): void => reload('SIGHUP');
  const onFatal = (err: unknown): void => {
    log.fatal({ err }, 'unexpected error; stopping so systemd can restart the gateway');
    shutdown('fatal', EXIT.SOFTWARE);
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);

  try {
    await daemon.start();
  } catch (err) {
    log.fatal({ err }, 'gateway failed to start');
    shutdown('start failure', EXIT.SOFTWARE);
  }

  if (!shuttingDown) {
    if (loaded.config.reload.watchFile) watcher = watchConfig(configFile, () => reload('file change'), log);
    const loop = monitorEventLoopDelay({ resolution: 20 });
    loop.enable();
    notifier.startWatchdog(() => {
      // A loop that stalled for more than 5 s since the last ping is wedged, whatever it is doing.
      const stalled = loop.max / 1e6 > 5_000;
      loop.reset();
      return !stalled;
    });
    // Usually `starting` here: sources may still be connecting and models filling their first window. The daemon logs
    // again when the warm-up is over ("gateway warmed up").
    const { status } = daemon.health();
    notifier.ready(`running: ${status}`);
    log.info({ http: daemon.httpPort, health: status }, 'lineguard ready');
  }

  await finished;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  process.off('SIGHUP', onHup);
  process.off('uncaughtException', onFatal);
  process.off('unhandledRejection', onFatal);
  log.info({ exitCode }, 'lineguard exiting');
  await new Promise<void>((resolve) => log.flush(() => resolve()));
  setTimeout(() => process.exit(exitCode), EXIT_LINGER_MS).unref();
  return exitCode;
}

/** Editors replace files (write a temp file, rename): watch the directory, debounce, and match the name. */
function watchConfig(configFile: string, onChange: () => void, log: ReturnType<typeof createLogger>): FSWatcher | undefined {
  const dir = path.dirname(path.resolve(configFile));
  const base = path.basename(configFile);
  let timer: NodeJS.Timeout | undefined;
  try {
    const watcher = watch(dir, (_event, name) => {
      if (name !== null && name !== base) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, 500);
    });
    watcher.on('error', (err) => log.warn({ err }, 'config file watch failed; SIGHUP still reloads'));
    log.info({ dir }, 'watching the config file for changes');
    return watcher;
  } catch (err) {
    log.warn({ err }, 'cannot watch the config file; SIGHUP still reloads');
    return undefined;
  }
}
