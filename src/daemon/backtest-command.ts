import type BetterSqlite3 from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, type CliCommand, type CliIo } from '../core/cli-command.js';
import { parseDuration } from '../core/units.js';
import type { BacktestResult } from '../runtime/backtest.js';
import type { AlertStats, LabelledFault, SweepRow } from '../runtime/backtest-report.js';
import { modelRules, type NamedRule } from '../runtime/config.js';
import { loadConfigFile } from './config/load.js';
import { tagSamplingIntervals } from './tag-intervals.js';

const DEFAULT_CONFIG = '/etc/lineguard/lineguard.yaml';

const USAGE = `Usage: lineguard backtest --model NAME [--config FILE] [--db FILE] [--file MODEL.onnx] [--from T] [--to T]
                          [--rule NAME] [--raise-above X --clear-below Y | --raise-below X --clear-above Y]
                          [--for-samples N] [--for-ms MS] [--cooldown-ms MS] [--thresholds LIST]
                          [--labels CSV] [--horizon DURATION] [--outputs] [--json]

Runs a model and its alert rules over the history in the gateway's buffer (read-only; the gateway may be running),
with the window assembly, features and rules of live inference, on this machine's CPU. Nothing is published.
  --config FILE      the gateway config (default: $LINEGUARD_CONFIG, else ${DEFAULT_CONFIG}); its buffer is read
  --db FILE          another buffer file (a copy taken from a gateway)
  --file MODEL.onnx  run this file instead of the configured one (a candidate, e.g. the model's shadow)
  --from T, --to T   window ends evaluated: epoch ms, an ISO 8601 time, or a duration back from now (24h);
                     default: the first and the last sample of the model's input tags
  --rule NAME        the rule the overrides and the sweep apply to (default: the first)
  --raise-above ...  override that rule's thresholds and debounce (--clear-below etc. as in the config)
  --thresholds LIST  raise thresholds of the sweep, comma-separated (default: the configured one and 9 evenly
                     spaced over the values the rule read); the clear threshold keeps the configured gap
  --labels CSV       ts,label rows (epoch ms or ISO time; 1/0 or true/false): a fault is a run of positive rows.
                     The sweep then has precision, recall and lead time.
  --horizon DURATION a raise up to this long before a fault counts as catching it (default 1h)
  --outputs          also print every window's outputs (as \`lineguard outputs --json\` prints the live record)
  --json             one JSON document
Progress goes to stderr every 2 s on long runs. (--plot is not available: see the README.)
Exit codes: 0 ok, 64 usage, 65 unreadable buffer or labels, 66 no buffer file, 78 bad config.`;

/** `lineguard backtest`: the model and its rules over the buffer's history (src/runtime/backtest.ts). */
export const backtestCommand: CliCommand = {
  name: 'backtest',
  summary: 'Replay a model and its alert rules over the buffer\'s history: alerts, alerts/hour, time in alert, threshold sweep.',
  usage: USAGE,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' }, db: { type: 'string' }, model: { type: 'string' }, file: { type: 'string' },
        from: { type: 'string' }, to: { type: 'string' }, rule: { type: 'string' },
        'raise-above': { type: 'string' }, 'clear-below': { type: 'string' }, 'raise-below': { type: 'string' }, 'clear-above': { type: 'string' },
        'for-samples': { type: 'string' }, 'for-ms': { type: 'string' }, 'cooldown-ms': { type: 'string' },
        thresholds: { type: 'string' }, labels: { type: 'string' }, horizon: { type: 'string' },
        outputs: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, plot: { type: 'string' },
      },
    });
    const usage = (message: string): number => {
      io.err(`lineguard backtest: ${message}`);
      return EXIT.USAGE;
    };
    if (values.plot !== undefined) return usage('--plot is not available in this version (no SVG chart library is bundled; see the README); use --outputs --json and plot the rows');
    if (values.model === undefined) return usage('--model NAME is required');
    const configFile = values.config ?? process.env.LINEGUARD_CONFIG ?? DEFAULT_CONFIG;
    const loaded = loadConfigFile(configFile);
    if (!loaded.ok) {
      for (const line of loaded.errors) io.err(line);
      return EXIT.CONFIG;
    }
    const { config, baseDir } = loaded;
    const cfg = config.models.find((m) => m.name === values.model);
    if (!cfg) return usage(`no model "${values.model}" in ${configFile} (models: ${config.models.map((m) => m.name).join(', ') || 'none'})`);

    let rules: NamedRule[];
    let ruleIndex: number;
    let thresholds: number[] | undefined;
    let horizonMs: number;
    let fromArg: number | undefined;
    let toArg: number | undefined;
    try {
      rules = modelRules(cfg);
      ruleIndex = values.rule === undefined ? 0 : rules.findIndex((r) => r.name === values.rule);
      if (ruleIndex < 0) return usage(`model ${cfg.name} has no rule "${values.rule}" (rules: ${rules.map((r) => r.name).join(', ')})`);
      rules[ruleIndex] = overrideRule(rules[ruleIndex]!, values);
      thresholds = values.thresholds?.split(',').map((t) => numberArg('--thresholds', t));
      horizonMs = values.horizon === undefined ? 3_600_000 : parseDuration(values.horizon);
      fromArg = values.from === undefined ? undefined : timeArg('--from', values.from);
      toArg = values.to === undefined ? undefined : timeArg('--to', values.to);
    } catch (err) {
      return usage((err as Error).message);
    }
    let labels: LabelledFault[] | undefined;
    // Loaded here, not at the top: the other commands of the CLI start without the native modules.
    const [{ default: Sqlite }, { TagRegistry }, { WindowQueries }, backtest, report] = await Promise.all([
      import('better-sqlite3'), import('../buffer/tag-registry.js'), import('../buffer/window-queries.js'),
      import('../runtime/backtest.js'), import('../runtime/backtest-report.js'),
    ]);
    if (values.labels !== undefined) {
      try {
        labels = report.labelledFaults(report.parseLabelsCsv(readFileSync(values.labels, 'utf8')));
      } catch (err) {
        io.err(`lineguard backtest: --labels ${values.labels}: ${(err as Error).message}`);
        return EXIT.DATAERR;
      }
    }
    const file = values.db ?? bufferFile(config.gateway.stateDir, config.buffer.file, baseDir);
    let db: BetterSqlite3.Database;
    try {
      db = new Sqlite(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      io.err(`lineguard backtest: cannot open ${file}: ${(err as Error).message}`);
      return EXIT.NOINPUT;
    }
    try {
      const tags = new TagRegistry(db);
      const ids = cfg.inputs.map((t) => tags.id(t)).filter((id): id is number => id !== undefined);
      const extent = ids.length === 0 ? undefined
        : db.prepare(`SELECT min(ts) AS first, max(ts) AS last FROM samples WHERE tag_id IN (${ids.map(() => '?').join(',')})`).get(...ids) as
          { first: number | null; last: number | null };
      const fromMs = fromArg ?? extent?.first ?? undefined;
      const toMs = toArg ?? extent?.last ?? undefined;
      if (fromMs === undefined || toMs === undefined) {
        io.err(`lineguard backtest: ${file} has no sample of the input tags of ${cfg.name} (${cfg.inputs.join(', ')})`);
        return EXIT.DATAERR;
      }
      const intervals = tagSamplingIntervals(config);
      const modelFile = values.file ? path.resolve(values.file) : path.isAbsolute(cfg.file) ? cfg.file : path.resolve(baseDir, cfg.file);
      const t0 = performance.now();
      const result = await backtest.runBacktest({
        cfg, file: modelFile, reader: new WindowQueries(db, tags), fromMs, toMs, rules, tagIntervalMs: (t) => intervals.get(t),
        onProgress: (done, total, ts) => io.err(`backtest ${cfg.name}: ${done}${total ? ` of ${total}` : ''} windows, at ${new Date(ts).toISOString()} (${Math.round((performance.now() - t0) / 1000)} s)`),
      });
      const values_ = report.ruleSeries(result, ruleIndex).map((p) => p.value);
      const sweep = report.thresholdSweep(result, ruleIndex, thresholds ?? report.defaultThresholds(rules[ruleIndex]!, values_),
        labels ? { faults: labels, horizonMs } : undefined);
      const stats = result.rules.map((r) => ({ rule: r, stats: report.alertStats(result.alerts.filter((a) => a.rule === r.name), fromMs, toMs) }));
      if (values.json) printJson(io, result, stats, ruleIndex, sweep, values.outputs, labels ? horizonMs : undefined);
      else printText(io, result, stats, ruleIndex, sweep, values.outputs, labels ? horizonMs : undefined);
      return EXIT.OK;
    } catch (err) {
      io.err(`lineguard backtest: ${(err as Error).message}`);
      return EXIT.DATAERR;
    } finally {
      db.close();
    }
  },
};

type Stats = Array<{ rule: NamedRule; stats: AlertStats }>;

function printJson(io: CliIo, r: BacktestResult, stats: Stats, ruleIndex: number, sweep: SweepRow[], outputs: boolean, horizonMs: number | undefined): void {
  const doc = {
    model: r.model, from: r.fromMs, to: r.toMs,
    windows: r.rows.length, skipped: r.skipped,
    rules: stats.map(({ rule, stats: s }) => ({ rule, ...s, alerts: r.alerts.filter((a) => a.rule === rule.name) })),
    sweep: { rule: r.rules[ruleIndex]!.name, ...(horizonMs !== undefined ? { horizonMs } : {}), rows: sweep },
    ...(outputs ? { outputs: r.rows } : {}),
  };
  io.out(JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
}

function printText(io: CliIo, r: BacktestResult, stats: Stats, ruleIndex: number, sweep: SweepRow[], outputs: boolean, horizonMs: number | undefined): void {
  const iso = (t: number): string => new Date(t).toISOString();
  io.out(`backtest of ${r.model.name} ${r.model.version} (${r.model.file}; ${r.model.normalisation})`);
  io.out(`period ${iso(r.fromMs)} .. ${iso(r.toMs)} (${duration(r.toMs - r.fromMs)} of source time)`);
  const skipped = Object.entries(r.skipped);
  const evaluated = r.rows.length - skipped.reduce((a, [, n]) => a + n, 0);
  io.out(`windows: ${r.rows.length}, ${evaluated} evaluated${skipped.length > 0 ? `, not evaluated: ${skipped.map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}`);
  if (outputs) {
    for (const row of r.rows) {
      const o = Object.entries(row.outputs ?? {}).map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.map(fmt).join(', ')}]` : fmt(v)}`).join(' ');
      io.out(`  ${iso(row.ts)}  ${row.skipped ? `skipped: ${row.skipped}` : o}`);
    }
  }
  for (const { rule, stats: s } of stats) {
    io.out('');
    io.out(`rule ${rule.name} (${thresholdText(rule)}): ${s.raises} alert${s.raises === 1 ? '' : 's'}, ${fmt(s.alertsPerHour)}/h, ` +
      `${fmt(s.alertsPerShift)}/shift (8 h), time in alert ${duration(s.timeInAlertMs)} (${fmt(100 * s.timeInAlertFraction)} %)`);
    for (const a of r.alerts.filter((x) => x.rule === rule.name)) {
      io.out(`  raised  ${iso(a.raisedAt)}  value ${fmt(a.raiseValue)}` +
        (a.clearedAt !== undefined ? `   cleared ${iso(a.clearedAt)}  value ${fmt(a.clearValue!)}  (${duration(a.clearedAt - a.raisedAt)})` : '   still active at the end'));
    }
  }
  const rule = r.rules[ruleIndex]!;
  io.out('');
  io.out(`threshold sweep of rule ${rule.name} (debounce, cooldown and the hysteresis gap as configured)${horizonMs !== undefined ? `; labels, horizon ${duration(horizonMs)}` : ''}:`);
  const head = ['threshold', 'alerts', 'per hour', 'per shift', 'in alert', ...(horizonMs !== undefined ? ['precision', 'recall', 'lead (median)'] : [])];
  const table = sweep.map((s) => [
    fmt(s.threshold), String(s.raises), fmt(s.alertsPerHour), fmt(s.alertsPerShift), duration(s.timeInAlertMs),
    ...(s.labels ? [fmt(s.labels.precision), `${fmt(s.labels.recall)} (${s.labels.caught}/${s.labels.faults})`, Number.isFinite(s.labels.medianLeadMs) ? signedDuration(s.labels.medianLeadMs) : '-'] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  io.out(`  ${head.map((h, i) => h.padStart(widths[i]!)).join('  ')}`);
  for (const row of table) io.out(`  ${row.map((c, i) => c.padStart(widths[i]!)).join('  ')}`);
}

function thresholdText(rule: NamedRule): string {
  const parts = rule.raiseAbove !== undefined ? [`raiseAbove ${rule.raiseAbove}`, `clearBelow ${rule.clearBelow}`] : [`raiseBelow ${rule.raiseBelow}`, `clearAbove ${rule.clearAbove}`];
  if (rule.forSamples > 1) parts.push(`forSamples ${rule.forSamples}`);
  if (rule.forMs > 0) parts.push(`forMs ${rule.forMs}`);
  if (rule.cooldownMs > 0) parts.push(`cooldownMs ${rule.cooldownMs}`);
  return parts.join(', ');
}

/** The rule with the command line's overrides; a rising override drops a falling threshold and the other way round. */
function overrideRule(rule: NamedRule, v: Record<string, string | boolean | undefined>): NamedRule {
  const num = (k: string): number | undefined => (typeof v[k] === 'string' ? numberArg(`--${k}`, v[k]) : undefined);
  const out: NamedRule = { ...rule };
  const ra = num('raise-above');
  const cb = num('clear-below');
  const rb = num('raise-below');
  const ca = num('clear-above');
  if ((ra !== undefined || cb !== undefined) && (rb !== undefined || ca !== undefined)) throw new Error('give either --raise-above/--clear-below or --raise-below/--clear-above');
  if (ra !== undefined || cb !== undefined) {
    delete out.raiseBelow;
    delete out.clearAbove;
    out.raiseAbove = ra ?? rule.raiseAbove;
    out.clearBelow = cb ?? (rule.clearBelow !== undefined && out.raiseAbove !== undefined ? Math.min(rule.clearBelow, out.raiseAbove) : out.raiseAbove);
    if (out.raiseAbove === undefined) throw new Error('--clear-below needs --raise-above (the rule is a falling one)');
    if (out.clearBelow! > out.raiseAbove) throw new Error(`--clear-below ${out.clearBelow} must not be above the raise threshold ${out.raiseAbove}`);
  } else if (rb !== undefined || ca !== undefined) {
    delete out.raiseAbove;
    delete out.clearBelow;
    out.raiseBelow = rb ?? rule.raiseBelow;
    out.clearAbove = ca ?? (rule.clearAbove !== undefined && out.raiseBelow !== undefined ? Math.max(rule.clearAbove, out.raiseBelow) : out.raiseBelow);
    if (out.raiseBelow === undefined) throw new Error('--clear-above needs --raise-below (the rule is a rising one)');
    if (out.clearAbove! < out.raiseBelow) throw new Error(`--clear-above ${out.clearAbove} must not be below the raise threshold ${out.raiseBelow}`);
  }
  const forSamples = num('for-samples');
  const forMs = num('for-ms');
  const cooldownMs = num('cooldown-ms');
  if (forSamples !== undefined) out.forSamples = Math.max(1, Math.round(forSamples));
  if (forMs !== undefined) out.forMs = Math.max(0, forMs);
  if (cooldownMs !== undefined) out.cooldownMs = Math.max(0, cooldownMs);
  return out;
}

function numberArg(flag: string, text: unknown): number {
  const n = Number(text);
  if (typeof text !== 'string' || text.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: "${String(text)}" is not a number`);
  return n;
}

/** Epoch ms, an ISO 8601 time, or a duration back from now. */
function timeArg(flag: string, text: string): number {
  if (/^-?\d+$/.test(text.trim())) return Number(text);
  const parsed = Date.parse(text);
  if (Number.isFinite(parsed)) return parsed;
  try {
    return Date.now() - parseDuration(text);
  } catch {
    throw new Error(`${flag}: "${text}" is neither epoch ms, an ISO 8601 time nor a duration (e.g. 24h)`);
  }
}

/** As `lineguard outputs` finds it: buffer.file under gateway.stateDir, a relative stateDir from the config's directory. */
function bufferFile(stateDir: string, file: string | undefined, baseDir: string): string {
  const name = file ?? 'lineguard.db';
  return path.isAbsolute(name) ? name : path.join(path.resolve(baseDir, stateDir), name);
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
}

function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${sec} s` : `${sec} s`;
}

function signedDuration(ms: number): string {
  return ms < 0 ? `-${duration(-ms)}` : duration(ms);
}
