import BetterSqlite3 from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../../src/core/alert.js';
import { AlertRecorder } from '../../support/alert-recorder.js';
import { alertSchemaErrors } from '../../support/alert-schema.js';
import { DaemonProcess } from '../../support/daemon-process.js';
import { Mosquitto } from '../../support/mosquitto.js';

/**
 * Issue 12, item 1, as a process: `lineguard run` is SIGKILLed at random moments (during start-up, mid-inference,
 * mid-drain) while a device keeps publishing rows that make two rules raise and clear many times a second, and is
 * restarted each time on the same state dir. The alert sink and a persistent QoS 1 subscriber share a private
 * Mosquitto. Whatever the moment of the kill, every alert event the outbox ever held must reach the subscriber, and
 * the history the subscriber sees must be one a correct gateway could have produced: per occurrence one raise and at
 * most one clear, never a clear before its raise, never two open occurrences of one rule, event times on source
 * time (the newest sample the inference used, never a clamped or an older one), and the stored rule state after each
 * crash equal to what was published or queued.
 */
const KILLS = 12;
const ROW_MS = 20;
const MODEL = path.resolve('test/fixtures/models/last-value.onnx');
const GATEWAY = 'crash-gw';
const dir = mkdtempSync(path.join(tmpdir(), 'lineguard-crash-'));
const stateDir = path.join(dir, 'state');
const dbFile = path.join(stateDir, 'lineguard.db');
const configFile = path.join(dir, 'lineguard.yaml');
const topicRoot = `lineguard-crash-${process.pid}`;
const seed = Number(process.env.LINEGUARD_CRASH_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with LINEGUARD_CRASH_SEED. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(seed);

let broker: Mosquitto;
let recorder: AlertRecorder;
let publisher: MqttClient;
let publishTimer: NodeJS.Timeout | undefined;
let lastTs = 0;
let published = 0;
const daemons: DaemonProcess[] = [];

/** What the state dir held right after one SIGKILL (read while no gateway runs). */
interface Snapshot {
  kill: number;
  integrity: string;
  outbox: AlertEvent[];
  ruleState: Map<string, StoredRule>;
}
/** The part of a stored rule state (alert_rule_state.state) the checks read. */
interface StoredRule {
  active?: { alertId: string; raisedAt: number } | null;
  lastEventTs?: number | null;
}
const snapshots: Snapshot[] = [];
const killedExits: Array<NodeJS.Signals | null> = [];
/** Every eventId the outbox is known to have held: its rows after each kill, and the events the runs logged. */
const heldIds = new Set<string>();

// The fixture's failure_probability is the last row's `a` (normalised with mean 0, std 1: unchanged). Two rules on
// it: `high` raises above 0.8 and clears below 0.5, `low` raises below 0.15 and clears above 0.3; the values below
// make both flip every few rows, some rows in the hysteresis bands.
const VALUES = [0.95, 0.9, 0.85, 0.7, 0.4, 0.25, 0.2, 0.1, 0.05];

function config(): string {
  return `gateway: { id: ${GATEWAY}, stateDir: ${JSON.stringify(stateDir)} }
http: { port: 0 }
mqtt:
  brokers: [{ name: site, url: "${broker.url}", reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } }]
  sources:
    - name: line
      broker: site
      topics: [${topicRoot}/line/press1]
      values: [{ tag: press1.a, pointer: /a }, { tag: press1.b, pointer: /b }]
      timestamp: { pointer: /ts, format: epoch_ms }
  alerts: { broker: site, topic: "${topicRoot}/{gateway}/alerts/{model}", statusTopic: "${topicRoot}/{gateway}/status" }
buffer: { flushIntervalMs: 50 }
models:
  - name: flapper
    file: ${JSON.stringify(MODEL)}
    asset: crash-line/press1
    inputs: [press1.a, press1.b]
    window: { samples: 4, latenessMs: 500 }
    schedule: { everyMs: 50 }
    watch: false
    alerts:
      - { name: high, kind: equipment_fault, severity: major, raiseAbove: 0.8, clearBelow: 0.5 }
      - { name: low, kind: degradation, severity: minor, raiseBelow: 0.15, clearAbove: 0.3 }
`;
}

const recentRows: string[] = [];
/** Rows the device sends again after each kill (see below). */
const REPLAYED_ROWS = 25;
let replayed = 0;

function publishRow(): void {
  lastTs = Math.max(lastTs + 1, Date.now());
  const a = VALUES[Math.floor(random() * VALUES.length)]!;
  published++;
  const row = JSON.stringify({ a, b: 10, ts: lastTs });
  recentRows.push(row);
  if (recentRows.length > REPLAYED_ROWS) recentRows.shift();
  publisher.publish(`${topicRoot}/line/press1`, row, { qos: 1 });
}

/**
 * An at-least-once device (or a store-and-forward edge box) sends its last rows again when it notices the gateway
 * went away: the restarted gateway receives them first, older than the windows it already evaluated. A gateway that
 * resumed from older samples than its last event would evaluate them (and stamp a clear before its raise).
 */
function startDevice(): void {
  publishTimer ??= setInterval(publishRow, ROW_MS);
}

function pauseDevice(): void {
  clearInterval(publishTimer);
  publishTimer = undefined;
}

function replayRecentRows(): void {
  for (const row of recentRows) publisher.publish(`${topicRoot}/line/press1`, row, { qos: 1 });
  replayed += recentRows.length;
}

function readState(kill: number): Snapshot | undefined {
  if (!existsSync(dbFile)) return undefined;
  const db = new BetterSqlite3(dbFile, { readonly: true, fileMustExist: true });
  try {
    const integrity = db.pragma('integrity_check', { simple: true }) as string;
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]));
    const outbox = tables.has('alert_outbox')
      ? (db.prepare('SELECT payload FROM alert_outbox ORDER BY seq').pluck().all() as string[]).map((p) => JSON.parse(p) as AlertEvent)
      : [];
    const ruleState = new Map<string, StoredRule>();
    if (tables.has('alert_rule_state')) {
      for (const row of db.prepare('SELECT rule_key, state FROM alert_rule_state').all() as Array<{ rule_key: string; state: string }>) {
        ruleState.set(row.rule_key, JSON.parse(row.state) as StoredRule);
      }
    }
    return { kill, integrity, outbox, ruleState };
  } finally {
    db.close();
  }
}

async function metric(baseUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function modelLastEnd(baseUrl: string): Promise<string | null | undefined> {
  const body = (await (await fetch(`${baseUrl}/healthz`)).json()) as { components: Record<string, { details?: { window?: { lastEnd?: string | null } } }> };
  return body.components['model/flapper']?.details?.window?.lastEnd;
}

async function until(done: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rule events (not the availability alerts) of one model+rule, keyed `<model>/<rule>`. */
function byRule(events: AlertEvent[]): Map<string, AlertEvent[]> {
  const out = new Map<string, AlertEvent[]>();
  for (const e of events) {
    if (e.kind === 'model_unavailable' || e.kind === 'source_unavailable') continue;
    const key = `${e.model?.name}/${e.rule.name}`;
    out.set(key, [...(out.get(key) ?? []), e]);
  }
  return out;
}

let finalExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
let finalState: Snapshot | undefined;
let finalRun: DaemonProcess;
const elapsed = { kills: 0, drain: 0 };

beforeAll(async () => {
  broker = await Mosquitto.start({ persistence: true, maxQueuedMessages: 0 });
  recorder = await AlertRecorder.start(broker.url, `crash-sub-${process.pid}`, `${topicRoot}/+/alerts/#`);
  publisher = mqtt.connect(broker.url, { clientId: `crash-pub-${process.pid}`, clean: true });
  await new Promise<void>((resolve, reject) => {
    publisher.once('connect', () => resolve());
    publisher.once('error', reject);
  });
  writeFileSync(configFile, config());
  startDevice();

  const t0 = Date.now();
  for (let kill = 1; kill <= KILLS; kill++) {
    const daemon = new DaemonProcess(['run', '--config', configFile]);
    daemons.push(daemon);
    if (!publishTimer) {
      // The device resumes live rows once this run is up (or when it dies in start-up).
      const up = daemon.waitForMessage('lineguard ready', 30_000).then(() => sleep(300));
      void Promise.race([up, daemon.exit]).then(startDevice, startDevice);
    }
    if (kill % 4 === 2) {
      // Some kills land in start-up: migrations, rule state restore, the model warm-up, the first drain.
      await sleep(100 + random() * 900);
    } else {
      await daemon.waitForMessage('lineguard ready', 30_000);
      await sleep(150 + random() * 1000);
    }
    daemon.signal('SIGKILL');
    // At every third kill the device goes quiet while the gateway is away, apart from the rows it sends again: the
    // first thing the restarted gateway sees is older than what it evaluated before the kill.
    if (kill % 3 === 0) pauseDevice();
    killedExits.push((await daemon.exit).signal);
    replayRecentRows();
    const snapshot = readState(kill);
    if (snapshot) snapshots.push(snapshot);
    // The subscriber goes away for a while too: its persistent session must queue what the sink publishes meanwhile.
    if (kill === 5) await recorder.disconnect();
    if (kill === 8) await recorder.connect();
  }
  elapsed.kills = Date.now() - t0;

  // The last run drains: the device stops, the model evaluates its last window, the outbox empties.
  const t1 = Date.now();
  finalRun = new DaemonProcess(['run', '--config', configFile]);
  daemons.push(finalRun);
  const serving = await finalRun.waitForMessage('serving /metrics and /healthz', 30_000);
  const baseUrl = String(serving.url);
  await finalRun.waitForMessage('lineguard ready', 30_000);
  startDevice();
  await sleep(500);
  pauseDevice();
  const lastEnd = new Date(lastTs).toISOString();
  await until(async () => (await modelLastEnd(baseUrl)) === lastEnd, `the model to evaluate the last row (${lastEnd})`, 15_000);
  await until(async () => (await metric(baseUrl, 'lineguard_buffer_outbox_depth')) === 0, 'the outbox to drain', 15_000);
  finalRun.signal('SIGTERM');
  finalExit = await finalRun.exit;
  finalState = readState(KILLS + 1);
  for (const snapshot of snapshots) for (const e of snapshot.outbox) heldIds.add(e.eventId);
  // The gateway logs each event it committed (after the commit: a kill may take the line with it).
  for (const d of daemons) for (const l of d.lines) if (typeof l.eventId === 'string') heldIds.add(l.eventId);
  // The last ones the broker acknowledged before the SIGTERM may still be on their way to the subscriber.
  await recorder.waitFor(() => {
    const got = new Set(recorder.unique().map((e) => e.eventId));
    return [...heldIds].every((id) => got.has(id));
  }, 'every eventId the outbox held', 10_000).catch(() => undefined);
  elapsed.drain = Date.now() - t1;
}, 120_000);

afterAll(async () => {
  if (publishTimer) clearInterval(publishTimer);
  for (const d of daemons) await d.kill();
  await publisher?.endAsync(true);
  await recorder?.close();
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe(`SIGKILL ×${KILLS} while alerts flow (seed ${seed})`, () => {
  it('was killed as often as planned while alerts flowed, and the last run stopped cleanly', () => {
    console.info(`crash-consistency: seed ${seed}, ${published} rows (${replayed} sent again after kills), ${recorder.received.length} alert deliveries ` +
      `(${recorder.unique().length} events), kills ${elapsed.kills} ms, drain ${elapsed.drain} ms; outbox at each kill: ` +
      `${snapshots.map((s) => s.outbox.length).join(',')}, ${heldIds.size} eventIds known held`);
    expect(killedExits).toEqual(Array.from({ length: KILLS }, () => 'SIGKILL'));
    // Kills found occurrences standing (not only quiet moments).
    expect(snapshots.filter((s) => [...s.ruleState.values()].some((r) => r.active)).length, 'kills with an alert standing').toBeGreaterThan(0);
    expect(finalExit).toEqual({ code: 0, signal: null });
    // Enough flips that every kill had alerts around it.
    expect(recorder.unique().length).toBeGreaterThan(10 * KILLS);
  });

  it('PRAGMA integrity_check is ok after every kill and at the end', () => {
    expect(snapshots.length).toBeGreaterThanOrEqual(KILLS - 1);
    for (const s of [...snapshots, finalState!]) expect(s.integrity, `after kill ${s.kill}`).toBe('ok');
  });

  it('every alert event the outbox ever held reached the subscriber, and the outbox is empty', () => {
    expect(finalState!.outbox).toEqual([]);
    const got = new Set(recorder.unique().map((e) => e.eventId));
    const missing = [...heldIds].filter((id) => !got.has(id));
    expect(heldIds.size).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });

  it('per alertId: exactly one raised, at most one cleared, never a clear before its raise', () => {
    const occurrences = new Map<string, AlertEvent[]>();
    for (const e of recorder.unique()) occurrences.set(e.alertId, [...(occurrences.get(e.alertId) ?? []), e]);
    const problems: string[] = [];
    for (const [alertId, events] of occurrences) {
      const raised = events.filter((e) => e.state === 'raised');
      const cleared = events.filter((e) => e.state === 'cleared');
      if (raised.length !== 1) problems.push(`${alertId}: ${raised.length} raised events`);
      if (cleared.length > 1) problems.push(`${alertId}: ${cleared.length} cleared events (${cleared.map((c) => c.eventId).join(', ')})`);
      const raise = raised[0];
      for (const c of cleared) {
        if (!raise) continue;
        if (c.raisedAt !== raise.ts || raise.raisedAt !== raise.ts) problems.push(`${alertId}: raisedAt ${c.raisedAt} of the clear, raise at ${raise.ts}`);
        // A clear comes from a later window than its raise (forSamples 1, one frame per sample time): strictly later.
        if (!(c.ts > raise.ts)) problems.push(`${alertId}: cleared at ${c.ts}, not after its raise at ${raise.ts}`);
        if (c.clearedAt !== c.ts) problems.push(`${alertId}: clearedAt ${c.clearedAt} is not ts ${c.ts}`);
      }
    }
    expect(occurrences.size).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it('per rule, occurrences alternate raised/cleared in source time: never two open at once', () => {
    const rules = byRule(recorder.unique());
    expect([...rules.keys()].sort()).toEqual(['flapper/high', 'flapper/low']);
    const problems: string[] = [];
    for (const [key, events] of rules) {
      const sorted = [...events].sort((x, y) => x.ts - y.ts);
      let open: AlertEvent | undefined;
      let previousTs = Number.NEGATIVE_INFINITY;
      for (const e of sorted) {
        if (e.ts === previousTs) problems.push(`${key}: two events at ts ${e.ts}`);
        previousTs = e.ts;
        if (e.state === 'raised') {
          if (open) problems.push(`${key}: ${e.alertId} raised at ${e.ts} while ${open.alertId} (raised at ${open.ts}) is open`);
          open = e;
        } else {
          if (!open) problems.push(`${key}: ${e.alertId} cleared at ${e.ts} with nothing open`);
          else if (open.alertId !== e.alertId) problems.push(`${key}: ${e.alertId} cleared at ${e.ts} while ${open.alertId} is the open one`);
          open = undefined;
        }
      }
      // The order of first arrival is the order of the events (the outbox delivers in seq order).
      const arrival = events.map((e) => e.eventId);
      const bySourceTime = sorted.map((e) => e.eventId);
      if (arrival.join() !== bySourceTime.join()) problems.push(`${key}: delivered out of source-time order`);
    }
    expect(problems).toEqual([]);
  });

  it('event times are the newest sample the triggering window used (never older samples after a restart)', () => {
    const problems: string[] = [];
    for (const e of recorder.unique()) {
      if (e.kind === 'model_unavailable' || e.kind === 'source_unavailable') continue;
      const newest = Math.max(...Object.values(e.inputs).map((rows) => rows.at(-1)?.[0] ?? Number.NEGATIVE_INFINITY));
      if (newest !== e.ts) problems.push(`${e.alertId} ${e.state} at ${e.ts}: newest input row at ${newest}`);
    }
    expect(problems).toEqual([]);
  });

  it('after each kill the stored rule state is what was published or queued', () => {
    const events = recorder.unique();
    const problems: string[] = [];
    for (const s of [...snapshots, finalState!]) {
      for (const [key, stored] of s.ruleState) {
        const [model, rule] = key.split('/');
        if (rule === 'model_unavailable' || model === 'source') continue;
        // The events of that rule up to the stored last event time, the newest last.
        const upTo = (byRule(events).get(key) ?? []).filter((e) => e.ts <= (stored.lastEventTs ?? Number.NEGATIVE_INFINITY)).sort((x, y) => x.ts - y.ts);
        const last = upTo.at(-1);
        if (stored.active) {
          if (last?.state !== 'raised' || last.alertId !== stored.active.alertId || last.ts !== stored.active.raisedAt) {
            problems.push(`kill ${s.kill}, ${key}: stored active ${stored.active.alertId} @${stored.active.raisedAt}; last delivered ${last?.state} ${last?.alertId} @${last?.ts}`);
          }
        } else if (last && last.state !== 'cleared') {
          problems.push(`kill ${s.kill}, ${key}: stored clear, last delivered ${last.state} ${last.alertId} @${last.ts}`);
        }
        if (last && stored.lastEventTs !== last.ts) problems.push(`kill ${s.kill}, ${key}: stored lastEventTs ${stored.lastEventTs}, last delivered event @${last.ts}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every alert received validates against the JSON Schema of docs/alert-payload.md', () => {
    const problems = recorder.unique().flatMap((e) => alertSchemaErrors(e).map((m) => `${e.eventId} (${e.kind} ${e.state}): ${m}`));
    expect(problems).toEqual([]);
  });

  it('no kill made the gateway refuse or lose an alert', () => {
    const bad = daemons.flatMap((d) => d.lines).filter((l) => /outbox refused|alert.*\b(lost|dropped)\b|\b(lost|dropped)\b.*alert/i.test(l.msg));
    expect(bad.map((l) => l.msg)).toEqual([]);
  });
});
