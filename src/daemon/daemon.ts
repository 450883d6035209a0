import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Component, ComponentHealth } from '../core/component.js';
import { gauge, counter } from '../core/metrics.js';
import { SourceClocks } from '../core/source-clock.js';
import { TagBus } from '../core/tag-bus.js';
import { registerSourceClockMetrics } from './source-clock-metrics.js';
import type { Config } from './config/schema.js';
import { loadConfigFile } from './config/load.js';
import { planComponents, type PlannedComponent } from './component-plan.js';
import { HealthServer, type HealthReport } from './health-server.js';
import type { SecretRedactor } from './logger.js';

/** How long one component may take to stop before the daemon moves on (the whole stop stays under 10 s). */
const STOP_TIMEOUT_MS = 4_000;
/**
 * How long one component's start() may take before the daemon reports it down and starts the next one. Components
 * bound their own start (a connector gives up waiting for its server after its connect timeout), so this only
 * catches one that hangs: without it, one component would hold back every other one and READY=1 forever.
 */
const START_TIMEOUT_MS = 30_000;

interface Running {
  plan: PlannedComponent;
  component: Component | undefined;
  /** Set when the component could not be created or started: shown in /healthz. */
  failure?: string;
}

export interface DaemonOptions {
  /** Bound on one component's start(), ms (default 30 s). */
  startTimeoutMs?: number;
}

export interface ReloadResult {
  ok: boolean;
  errors: string[];
  restarted: string[];
  stopped: string[];
  started: string[];
  unchanged: string[];
}

/**
 * The daemon: builds the components a config asks for, starts them in order (buffer, models, sink, sources), serves
 * /metrics and /healthz, reloads a changed config by restarting only what changed, and stops everything within a
 * bounded time. A component that fails is reported and left down; the others keep running.
 */
export class Daemon {
  readonly registry = new Registry();
  readonly bus: TagBus;
  /** Every source's clock: the bus stamps each batch through it before the buffer or a model sees it. */
  readonly clocks: SourceClocks;
  #config: Config;
  #baseDir: string;
  #running = new Map<string, Running>();
  #http: HealthServer | undefined;
  #abort = new AbortController();
  #startedAt = Date.now();
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #reloading: Promise<ReloadResult> | undefined;
  /** A reload asked for while one runs: it runs once more afterwards, on the file as it is then. */
  #reloadAgain: Promise<ReloadResult> | undefined;
  readonly #startTimeoutMs: number;
  readonly #reloads;
  readonly #componentUp;

  constructor(
    private readonly configFile: string,
    loaded: { config: Config; baseDir: string; secrets: string[] },
    private readonly log: Logger,
    private readonly redactor: SecretRedactor,
    options: DaemonOptions = {},
  ) {
    this.#startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
    this.#config = loaded.config;
    this.#baseDir = loaded.baseDir;
    this.redactor.set(loaded.secrets);
    const onListenerError = (err: unknown): void => this.log.error({ err }, 'a tag bus listener failed; other listeners still run');
    this.clocks = new SourceClocks(undefined, undefined, onListenerError);
    this.#applyClockPolicies(loaded.config);
    this.clocks.onStep((step) => this.log.warn({ clockStep: step }, `clock step on ${step.source}: its time jumped by ${Math.round(step.deltaMs / 1000)} s; models reading it restart their windows on the new timeline`));
    this.bus = new TagBus(onListenerError, this.clocks.stamp);
    this.registry.setDefaultLabels({ gateway: loaded.config.gateway.id });
    collectDefaultMetrics({ register: this.registry, prefix: 'lineguard_' });
    registerSourceClockMetrics(this.registry, this.clocks);
    this.#reloads = counter(this.registry, { name: 'lineguard_config_reloads_total', help: 'Config reloads by result.', labelNames: ['result'] });
    this.#componentUp = gauge(this.registry, {
      name: 'lineguard_component_up', help: '1 when the component is up, 0.5 degraded, 0 otherwise.', labelNames: ['component'],
      // Set by health(), which the HTTP server runs before every scrape of /metrics, so it is never stale.
    });
    gauge(this.registry, { name: 'lineguard_build_info', help: 'Version of the running gateway.', labelNames: ['version', 'node'] })
      .set({ version: process.env.npm_package_version ?? '0.1.0', node: process.version }, 1);
  }

  get config(): Config {
    return this.#config;
  }

  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  /** Starts the HTTP endpoint and every component in order. Idempotent. A stop() while it runs starts no more. */
  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    mkdirSync(this.#config.gateway.stateDir, { recursive: true });
    await this.#startHttp();
    for (const plan of planComponents(this.#config, this.#baseDir)) {
      // SIGTERM during startup: stop() waits for this loop, so whatever it has started gets stopped; start no more.
      if (this.#abort.signal.aborted) return;
      await this.#startOne(plan);
    }
    this.log.info({ components: [...this.#running.keys()], stateDir: this.#config.gateway.stateDir }, 'gateway started');
  }

  /**
   * Re-reads the config file. An invalid file changes nothing (every error is logged); a valid one restarts only
   * the components whose fingerprint changed, and those that hold references to a restarted one.
   *
   * Reloads never overlap, nor run during start(): each would start the same components. A reload asked for while
   * one runs is not merged into it (that one read the file before the latest save) but runs once more after it.
   */
  reload(): Promise<ReloadResult> {
    if (this.#abort.signal.aborted) return Promise.resolve(refusedReload('the gateway is stopping'));
    if (this.#reloading) {
      this.#reloadAgain ??= this.#reloading
        .catch(() => undefined)
        .then(() => {
          this.#reloadAgain = undefined;
          return this.reload();
        });
      return this.#reloadAgain;
    }
    this.#reloading = (async () => {
      await this.#starting?.catch(() => undefined);
      if (this.#abort.signal.aborted) return refusedReload('the gateway is stopping');
      return this.#reload();
    })().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(): Promise<ReloadResult> {
    const result: ReloadResult = { ok: false, errors: [], restarted: [], stopped: [], started: [], unchanged: [] };
    const loaded = loadConfigFile(this.configFile);
    if (!loaded.ok) {
      result.errors = loaded.errors;
      this.#reloads.inc({ result: 'invalid' });
      for (const line of loaded.errors) this.log.error({ configError: line }, `config reload refused: ${line}`);
      this.log.error({ errors: loaded.errors.length }, 'config reload refused: the gateway keeps running on the previous config');
      return result;
    }
    try {
      mkdirSync(loaded.config.gateway.stateDir, { recursive: true });
    } catch (err) {
      // Checked before anything changes: a half-applied reload would leave the old components on the new config.
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      result.errors = [`${this.configFile}: cannot create gateway.stateDir ${loaded.config.gateway.stateDir} (${code})`];
      this.#reloads.inc({ result: 'invalid' });
      this.log.error({ err, configError: result.errors[0] }, 'config reload refused: the gateway keeps running on the previous config');
      return result;
    }
    const previous = this.#config;
    this.#config = loaded.config;
    this.#applyClockPolicies(loaded.config);
    this.#baseDir = loaded.baseDir;
    // Added, not replaced: a rotated password is still a password, and components still stopping hold the old one.
    this.redactor.add(loaded.secrets);
    this.log.level = loaded.config.log.level;
    if (previous.gateway.id !== loaded.config.gateway.id) this.registry.setDefaultLabels({ gateway: loaded.config.gateway.id });

    const plan = planComponents(loaded.config, loaded.baseDir);
    const wanted = new Map(plan.map((p) => [p.name, p]));
    const toStop = new Set<string>();
    for (const [name, running] of this.#running) {
      const next = wanted.get(name);
      if (!next || next.fingerprint !== running.plan.fingerprint || running.failure) toStop.add(name);
    }
    // A restarted component invalidates the references its dependents hold.
    let grew = true;
    while (grew) {
      grew = false;
      for (const [name, running] of this.#running) {
        if (!toStop.has(name) && running.plan.dependsOn.some((d) => toStop.has(d))) {
          toStop.add(name);
          grew = true;
        }
      }
    }
    const order = [...this.#running.keys()].reverse().filter((n) => toStop.has(n));
    for (const name of order) {
      await this.#stopOne(name);
      (wanted.has(name) ? result.restarted : result.stopped).push(name);
    }
    for (const p of plan) {
      if (this.#running.has(p.name)) {
        result.unchanged.push(p.name);
        continue;
      }
      if (this.#abort.signal.aborted) break;
      if (!result.restarted.includes(p.name)) result.started.push(p.name);
      await this.#startOne(p);
    }
    // Keep the map in plan order so stop() stops in reverse start order.
    this.#running = new Map(plan.flatMap((p) => {
      const running = this.#running.get(p.name);
      return running ? [[p.name, running] as const] : [];
    }));

    // Also when it is unchanged but not serving: the port was taken at start, and SIGHUP is how to try it again.
    const httpDown = loaded.config.http.enabled && !this.#http;
    if (httpDown || JSON.stringify(previous.http) !== JSON.stringify(loaded.config.http)) {
      await this.#http?.stop();
      this.#http = undefined;
      await this.#startHttp();
      result.restarted.push('http');
    }
    result.ok = true;
    this.#reloads.inc({ result: 'applied' });
    this.log.info(
      { restarted: result.restarted, started: result.started, stopped: result.stopped, unchanged: result.unchanged.length },
      'config reloaded',
    );
    return result;
  }

  /** Stops every component in reverse start order, each bounded in time. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abort.abort(new Error('gateway stopping'));
      // A start or reload in progress gives up at the abort; wait for it so the loop below sees every component.
      await this.#starting?.catch(() => undefined);
      await (this.#reloadAgain ?? this.#reloading)?.catch(() => undefined);
      for (const name of [...this.#running.keys()].reverse()) await this.#stopOne(name);
      await this.#http?.stop();
      this.log.info({ uptimeS: Math.round((Date.now() - this.#startedAt) / 1000) }, 'gateway stopped');
    })();
    return this.#stopping;
  }

  health(): HealthReport {
    const components: Record<string, ComponentHealth> = {};
    const reasons: string[] = [];
    for (const [name, running] of this.#running) {
      let health: ComponentHealth;
      if (running.failure || !running.component) health = { state: 'down', reason: running.failure ?? 'not started' };
      else {
        try {
          health = running.component.health();
        } catch (err) {
          health = { state: 'down', reason: `health check failed: ${(err as Error).message}` };
        }
      }
      components[name] = health;
      this.#componentUp.set({ component: name }, health.state === 'up' ? 1 : health.state === 'degraded' ? 0.5 : 0);
      if (health.state !== 'up') reasons.push(`${name} is ${health.state}${health.reason ? `: ${health.reason}` : ''}`);
    }
    return {
      status: reasons.length === 0 ? 'up' : 'down',
      gateway: this.#config.gateway.id,
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      reasons,
      components,
      clocks: this.clocks.states(),
    };
  }

  /** Each source's `clock:` policy, by the name its samples carry. */
  #applyClockPolicies(config: Config): void {
    for (const server of config.opcua) this.clocks.setPolicy(`opcua/${server.name}`, server.clock);
    for (const source of config.mqtt.sources) this.clocks.setPolicy(`mqtt-source/${source.name}`, source.clock);
  }

  /** A running component by name (`buffer`, `opcua/plc1`...), for the demo and tests. */
  component(name: string): Component | undefined {
    return this.#running.get(name)?.component;
  }

  async #startHttp(): Promise<void> {
    const http = this.#config.http;
    if (!http.enabled) return;
    const server = new HealthServer({ host: http.host, port: http.port }, this.registry, () => this.health(), this.log.child({ component: 'http' }));
    try {
      await server.start();
      this.#http = server;
      this.log.info({ url: `http://${http.host}:${server.port}` }, 'serving /metrics and /healthz');
    } catch (err) {
      // A taken port must not stop the gateway from collecting data: say so loudly and run without the endpoint.
      this.log.error({ err, host: http.host, port: http.port }, 'cannot serve /metrics and /healthz; the gateway runs without them');
    }
  }

  async #startOne(plan: PlannedComponent): Promise<void> {
    const [kind, instance] = plan.name.includes('/') ? plan.name.split('/', 2) : [plan.name, undefined];
    const log = this.log.child({ component: kind, ...(instance ? { instance } : {}) });
    const running: Running = { plan, component: undefined };
    this.#running.set(plan.name, running);
    const failed = (err: unknown): void => {
      running.failure = (err as Error).message;
      log.error({ err }, `${plan.name} failed to start; the rest of the gateway keeps running`);
    };
    let starting: Promise<void>;
    try {
      running.component = plan.create(
        { log, metrics: this.registry, bus: this.bus, gatewayId: this.#config.gateway.id, stateDir: this.#config.gateway.stateDir, clocks: this.clocks },
        { get: (name) => this.#running.get(name)?.component },
      );
      starting = running.component.start(this.#abort.signal);
    } catch (err) {
      failed(err);
      return;
    }
    const outcome = await this.#settledOrLate(starting);
    if (outcome === 'started') return;
    if (outcome instanceof Error) {
      failed(outcome);
      return;
    }
    // Not started in time, or the gateway is stopping: move on; stop() stops this one like the others.
    if (outcome === 'aborted') {
      starting.catch(() => undefined);
      return;
    }
    const hung = `start() has not finished after ${this.#startTimeoutMs / 1000} s; the rest of the gateway started without it`;
    running.failure = hung;
    log.error({ timeoutMs: this.#startTimeoutMs }, `${plan.name} did not start in time; the rest of the gateway keeps running`);
    const current = (): boolean => this.#running.get(plan.name) === running && running.failure === hung;
    starting.then(
      () => {
        if (!current()) return;
        delete running.failure;
        log.info(`${plan.name} started late`);
      },
      (err: unknown) => {
        if (current()) failed(err);
      },
    );
  }

  /** Waits for a start() to settle, at most the start timeout, and not past the abort of the gateway. */
  async #settledOrLate(starting: Promise<void>): Promise<'started' | Error | 'timeout' | 'aborted'> {
    const signal = this.#abort.signal;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const late = new Promise<'timeout' | 'aborted'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#startTimeoutMs);
      onAbort = () => resolve('aborted');
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([
        starting.then(() => 'started' as const, (err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
        late,
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  async #stopOne(name: string): Promise<void> {
    const running = this.#running.get(name);
    this.#running.delete(name);
    this.#componentUp.remove({ component: name });
    if (!running?.component) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
    });
    try {
      const outcome = await Promise.race([running.component.stop().then(() => 'stopped' as const), timeout]);
      if (outcome === 'timeout') this.log.warn({ component: name, timeoutMs: STOP_TIMEOUT_MS }, 'component did not stop in time; moving on');
    } catch (err) {
      this.log.error({ err, component: name }, 'component failed to stop cleanly');
    } finally {
      clearTimeout(timer);
    }
  }
}

function refusedReload(reason: string): ReloadResult {
  return { ok: false, errors: [reason], restarted: [], stopped: [], started: [], unchanged: [] };
}
