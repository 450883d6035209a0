import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Component, ComponentHealth } from '../core/component.js';
import { gauge, counter } from '../core/metrics.js';
import { MqttAlertSink } from '../connectors/mqtt/index.js';
import { monotonicMs, SourceClocks } from '../core/source-clock.js';
import { TagBus } from '../core/tag-bus.js';
import { registerSourceClockMetrics } from './source-clock-metrics.js';
import type { Config } from './config/schema.js';
import { loadConfigFile } from './config/load.js';
import { planComponents, type PlannedComponent } from './component-plan.js';
import { GatewayHealth, roleOf, type ComponentRole, type ComponentStatus, type GatewayState } from './gateway-health.js';
import { HealthServer, type HealthReport } from './health-server.js';
import { RecentAlerts } from './recent-alerts.js';
import { StatusPage } from './status-page.js';
import { TagTable } from './tag-table.js';
import { SampleBuffer } from '../buffer/index.js';
import type { SecretRedactor } from './logger.js';

/** How long one component may take to stop during a reload before the daemon moves on. */
const STOP_TIMEOUT_MS = 4_000;
/**
 * A clean stop, phase by phase. Components that watch others go first. Sources stop in parallel (a PLC that does not answer holds its own stop for up to
 * ~4.5 s; four of them one after another used to use up the whole deadline), then the models (they may still enqueue
 * an alert), then the sink (it gets its in-flight PUBACKs and publishes the offline status). A component that overruns
 * its phase's bound is logged and left behind. The buffer comes last, always runs whatever the phases before did, and
 * is waited for without a bound of its own (its final commit and the outbox close are what must not be lost): it has
 * what is left of the budget.
 */
const STOP_PHASES: ReadonlyArray<{ roles: readonly ComponentRole[]; timeoutMs?: number }> = [
  // Watchers (source-watch) first: a source stopping must not look like a source going down.
  { roles: ['other'], timeoutMs: 1_000 },
  { roles: ['source'], timeoutMs: 5_000 },
  { roles: ['model'], timeoutMs: 4_000 },
  { roles: ['sink'], timeoutMs: 4_000 },
  { roles: ['buffer'] },
];
/** Time kept for the buffer's final commit and close within the budget (it takes well under a second). */
const BUFFER_STOP_ALLOWANCE_MS = 2_000;
/**
 * Bound on Daemon.stop(): the phases above. run-daemon's hard deadline adds a margin, and both stay under the unit's
 * TimeoutStopSec=20 s (systemd/lineguard.service), after which systemd would SIGKILL us mid-commit.
 */
export const STOP_BUDGET_MS = STOP_PHASES.reduce((sum, p) => sum + (p.timeoutMs ?? 0), 0) + BUFFER_STOP_ALLOWANCE_MS;
/**
 * How long the gateway may say `starting` (sources connecting, models filling their first window) before a component
 * still starting counts as degraded.
 */
const WARM_UP_GRACE_MS = 120_000;
/** How often the daemon looks whether the warm-up is over, to log it once. */
const WARM_UP_CHECK_MS = 1_000;
/**
 * How long one component's start() may take before the daemon reports it down and starts the next one. Components
 * bound their own start (a connector gives up waiting for its server after its connect timeout), so this only
 * catches one that hangs: without it, one component would hold back every other one and READY=1 forever.
 */
const START_TIMEOUT_MS = 30_000;
/** A source's clock steps are logged at most this often (all are counted). */
const STEP_LOG_INTERVAL_MS = 60_000;

interface Running {
  plan: PlannedComponent;
  component: Component | undefined;
  /** Set when the component could not be created or started: shown in /healthz. */
  failure?: string;
  /** performance.now() when it was started. */
  startedAt: number;
}

export interface DaemonOptions {
  /** Bound on one component's start(), ms (default 30 s). */
  startTimeoutMs?: number;
  /** How long the gateway may be `starting` before components still starting count as degraded, ms (default 120 s). */
  warmUpGraceMs?: number;
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
  /** Monotonic: uptime must not jump with the wall clock. */
  #startedAt = monotonicMs();
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #reloading: Promise<ReloadResult> | undefined;
  /** A reload asked for while one runs: it runs once more afterwards, on the file as it is then. */
  #reloadAgain: Promise<ReloadResult> | undefined;
  readonly #startTimeoutMs: number;
  readonly #reloads;
  readonly #componentUp;
  readonly #gatewayState;
  readonly #gatewayHealth: GatewayHealth;
  #warmUpTimer: NodeJS.Timeout | undefined;
  /** For the status page: the alert events of this process (the outbox keeps only undelivered ones). */
  readonly recentAlerts = new RecentAlerts();
  /** For the status page: the last value of every tag on the bus. */
  readonly tagTable = new TagTable();
  #statusPage: StatusPage | undefined;

  constructor(
    private readonly configFile: string,
    loaded: { config: Config; baseDir: string; secrets: string[]; warnings?: string[] },
    private readonly log: Logger,
    private readonly redactor: SecretRedactor,
    options: DaemonOptions = {},
  ) {
    this.#startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
    this.#gatewayHealth = new GatewayHealth({ warmUpGraceMs: options.warmUpGraceMs ?? WARM_UP_GRACE_MS });
    this.#config = loaded.config;
    this.#baseDir = loaded.baseDir;
    this.redactor.set(loaded.secrets);
    for (const line of loaded.warnings ?? []) this.log.warn({ configWarning: line }, `config: ${line}`);
    const onListenerError = (err: unknown): void => this.log.error({ err }, 'a tag bus listener failed; other listeners still run');
    this.clocks = new SourceClocks(undefined, undefined, onListenerError);
    this.#applyClockPolicies(loaded.config);
    // Logged at a limited rate: a PLC whose clock flips back and forth must not flood the journal (the count is in
    // lineguard_source_clock_steps_total and /healthz).
    const stepLoggedAt = new Map<string, { at: number; since: number }>();
    this.clocks.onStep((step) => {
      const last = stepLoggedAt.get(step.source);
      const now = monotonicMs();
      if (last && now - last.at < STEP_LOG_INTERVAL_MS) {
        last.since++;
        return;
      }
      stepLoggedAt.set(step.source, { at: now, since: 0 });
      this.log.warn(
        { clockStep: step, stepsNotLogged: last?.since ?? 0 },
        `clock step on ${step.source}: its time jumped by ${Math.round(step.deltaMs / 1000)} s; models reading it restart their windows on the new timeline`,
      );
    });
    this.bus = new TagBus(onListenerError, this.clocks.stamp);
    this.tagTable.follow(this.bus);
    this.registry.setDefaultLabels({ gateway: loaded.config.gateway.id });
    collectDefaultMetrics({ register: this.registry, prefix: 'lineguard_' });
    registerSourceClockMetrics(this.registry, this.clocks);
    this.#reloads = counter(this.registry, { name: 'lineguard_config_reloads_total', help: 'Config reloads by result.', labelNames: ['result'] });
    this.#componentUp = gauge(this.registry, {
      name: 'lineguard_component_up', help: '1 when the component is up, 0.5 degraded, 0 otherwise.', labelNames: ['component'],
      // Set by health(), which the HTTP server runs before every scrape of /metrics, so it is never stale.
    });
    this.#gatewayState = gauge(this.registry, {
      name: 'lineguard_gateway_state', help: '1 for the state the gateway is in (starting, up, degraded, down; README "Observability"), 0 for the others.',
      labelNames: ['state'],
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
    this.#gatewayHealth.startFinished();
    this.log.info({ components: [...this.#running.keys()], stateDir: this.#config.gateway.stateDir }, 'gateway started');
    this.#watchWarmUp();
  }

  /** Logs once when the warm-up is over (every component left `starting`, or the grace passed), with the verdict. */
  #watchWarmUp(): void {
    const check = (): void => {
      if (this.#abort.signal.aborted) return;
      const report = this.health();
      if (!this.#gatewayHealth.warmedUp) {
        this.#warmUpTimer = setTimeout(check, WARM_UP_CHECK_MS);
        this.#warmUpTimer.unref();
        return;
      }
      this.#warmUpTimer = undefined;
      const warmUpS = Math.round((this.#gatewayHealth.warmUpMs ?? 0) / 100) / 10;
      const fields = { health: report.status, warmUpS, ...(report.reasons.length > 0 ? { reasons: report.reasons } : {}) };
      if (report.status === 'up') this.log.info(fields, 'gateway warmed up: every component is up');
      else this.log.warn(fields, `gateway warmed up but ${report.status}: ${report.reasons.join('; ')}`);
    };
    check();
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
    for (const line of loaded.warnings) this.log.warn({ configWarning: line }, `config: ${line}`);
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
      this.#statusPage?.close();
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

  /**
   * Stops everything within STOP_BUDGET_MS: sources in parallel, then models, then the sink, then the buffer (final
   * commit, outbox closed), each phase bounded (STOP_PHASES); a component that overruns its phase is left to finish
   * in the background and logged. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const t0 = performance.now();
      this.#abort.abort(new Error('gateway stopping'));
      clearTimeout(this.#warmUpTimer);
      // A start or reload in progress gives up at the abort; wait for it so the phases below see every component.
      await this.#starting?.catch(() => undefined);
      await (this.#reloadAgain ?? this.#reloading)?.catch(() => undefined);
      for (const phase of STOP_PHASES) {
        const names = [...this.#running.keys()].filter((name) => phase.roles.includes(roleOf(name)));
        if (names.length > 0) await Promise.all(names.map((name) => this.#stopOne(name, phase.timeoutMs)));
      }
      // Anything a phase did not name (none today): stopped last, still bounded.
      for (const name of [...this.#running.keys()].reverse()) await this.#stopOne(name);
      await this.#http?.stop();
      this.#statusPage?.close();
      this.tagTable.unfollow();
      this.recentAlerts.unfollow();
      this.log.info({ uptimeS: Math.round((monotonicMs() - this.#startedAt) / 1000), stopMs: Math.round(performance.now() - t0) }, 'gateway stopped');
    })();
    return this.#stopping;
  }

  /**
   * The gateway's state and every component's (README "Observability"; the rules are in gateway-health.ts). Also sets
   * the gauges derived from health: the HTTP server calls this before every scrape of /metrics.
   */
  health(): HealthReport {
    const components: Record<string, ComponentHealth> = {};
    const statuses: ComponentStatus[] = [];
    const now = performance.now();
    for (const [name, running] of this.#running) {
      let health: ComponentHealth;
      let undeliverable: string | undefined;
      const component = running.component;
      if (running.failure || !component) health = { state: 'down', reason: running.failure ?? 'not started' };
      else {
        try {
          health = component.health();
          if (component instanceof MqttAlertSink) undeliverable = component.undeliverable();
        } catch (err) {
          health = { state: 'down', reason: `health check failed: ${(err as Error).message}` };
        }
      }
      const role = roleOf(name);
      // A sink that could not even be created or started will deliver nothing: no bound to wait for.
      if (role === 'sink' && running.failure) undeliverable = `the alert sink did not start: ${running.failure}`;
      components[name] = health;
      statuses.push({ name, role, health, startedMsAgo: now - running.startedAt, ...(undeliverable ? { undeliverable } : {}) });
      this.#componentUp.set({ component: name }, health.state === 'up' ? 1 : health.state === 'degraded' ? 0.5 : 0);
    }
    const { status, reasons } = this.#gatewayHealth.assess(statuses);
    for (const state of GATEWAY_STATES) this.#gatewayState.set({ state }, state === status ? 1 : 0);
    return {
      status,
      gateway: this.#config.gateway.id,
      uptimeS: Math.round((monotonicMs() - this.#startedAt) / 1000),
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
    const log = this.log.child({ component: 'http' });
    this.#statusPage = http.statusPage.enabled
      ? new StatusPage({ host: http.host, ...http.statusPage }, {
        report: () => this.health(), config: () => this.#config, tags: this.tagTable, alerts: this.recentAlerts,
        bufferFile: () => (this.component('buffer') as SampleBuffer | undefined)?.file,
      }, log)
      : undefined;
    const server = new HealthServer({ host: http.host, port: http.port }, this.registry, () => this.health(), log, this.#statusPage);
    try {
      await server.start();
      this.#http = server;
      // The message stays the same with or without the page (scripts and tests wait for it); the page's URL is a field.
      const url = `http://${http.host}:${server.port}`;
      this.log.info({ url, ...(this.#statusPage ? { statusPage: `${url}/` } : {}) }, 'serving /metrics and /healthz');
    } catch (err) {
      // A taken port must not stop the gateway from collecting data: say so loudly and run without the endpoint.
      this.log.error({ err, host: http.host, port: http.port }, 'cannot serve /metrics and /healthz; the gateway runs without them');
    }
  }

  async #startOne(plan: PlannedComponent): Promise<void> {
    const [kind, instance] = plan.name.includes('/') ? plan.name.split('/', 2) : [plan.name, undefined];
    const log = this.log.child({ component: kind, ...(instance ? { instance } : {}) });
    const running: Running = { plan, component: undefined, startedAt: performance.now() };
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
    if (outcome === 'started') {
      if (running.component instanceof SampleBuffer) this.#followAlerts(running.component, log);
      return;
    }
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

  /** Keeps the status page's ring of recent alert events fed from the (new) buffer's outbox. */
  #followAlerts(buffer: SampleBuffer, log: Logger): void {
    try {
      this.recentAlerts.follow(buffer.outbox);
    } catch (err) {
      log.error({ err }, 'the status page cannot follow the alert outbox: it shows no recent alerts');
    }
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

  /** Stops one component, waiting at most `timeoutMs` (no bound when undefined: the buffer at shutdown). */
  async #stopOne(name: string, timeoutMs: number | undefined = STOP_TIMEOUT_MS): Promise<void> {
    const running = this.#running.get(name);
    this.#running.delete(name);
    this.#componentUp.remove({ component: name });
    if (!running?.component) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      if (timeoutMs !== undefined) timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const outcome = await Promise.race([running.component.stop().then(() => 'stopped' as const), timeout]);
      if (outcome === 'timeout') this.log.warn({ component: name, timeoutMs }, 'component did not stop in time; moving on');
    } catch (err) {
      this.log.error({ err, component: name }, 'component failed to stop cleanly');
    } finally {
      clearTimeout(timer);
    }
  }
}

const GATEWAY_STATES: readonly GatewayState[] = ['starting', 'up', 'degraded', 'down'];

function refusedReload(reason: string): ReloadResult {
  return { ok: false, errors: [reason], restarted: [], stopped: [], started: [], unchanged: [] };
}
