import type BetterSqlite3 from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { EXIT, type CliCommand } from '../core/cli-command.js';
import { parseDuration } from '../core/units.js';

const DEFAULT_CONFIG = '/etc/lineguard/lineguard.yaml';
const DEFAULT_STATE_DIR = '/var/lib/lineguard';

/**
 * `lineguard outputs`: what each model computed, from the record in the buffer (one row per evaluated window, and
 * per window that was not evaluated, with the reason). Reads the database read-only while the gateway runs.
 */
export const outputsCommand: CliCommand = {
  name: 'outputs',
  summary: 'Print what the models computed: every inference (and skipped window) recorded in the buffer.',
  usage: `Usage: lineguard outputs [--config FILE] [--db FILE] [--model NAME] [--since DURATION] [--limit N] [--json]

Reads the inference record of the gateway's buffer (gateway.stateDir and buffer.file of the config: --config FILE,
else $LINEGUARD_CONFIG, else ${DEFAULT_CONFIG}; or --db FILE). Rows are ordered by model, then by source time.
  --model NAME      one model only (and its shadow, recorded as NAME#shadow)
  --since DURATION  rows recorded in the last DURATION (e.g. 10m, 2h, 7d)
  --limit N         at most N rows (default 100000)
  --json            one JSON object per line:
                    {"ts": <epoch ms, source time of the window's end>, "model", "version", "outputs": {"<name>": number | [numbers]},
                     "skipped"?: "<reason>", "detail"?: "<why>"}`,
  async run(argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' }, db: { type: 'string' }, model: { type: 'string' }, since: { type: 'string' },
        limit: { type: 'string' }, json: { type: 'boolean', default: false },
      },
    });
    let sinceAt: number | undefined;
    if (values.since !== undefined) {
      try {
        sinceAt = Date.now() - parseDuration(values.since);
      } catch (err) {
        io.err(`lineguard outputs: --since: ${(err as Error).message}`);
        return EXIT.USAGE;
      }
    }
    const limit = values.limit === undefined ? 100_000 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      io.err('lineguard outputs: --limit must be a positive integer');
      return EXIT.USAGE;
    }
    const file = values.db ?? databaseOf(values.config ?? process.env.LINEGUARD_CONFIG ?? DEFAULT_CONFIG, io.err);
    // Loaded here, not at the top: every other command of the CLI starts without the native module.
    const [{ default: Sqlite }, { readInferences }] = await Promise.all([import('better-sqlite3'), import('../buffer/inference-log.js')]);
    let db: BetterSqlite3.Database;
    try {
      db = new Sqlite(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      io.err(`lineguard outputs: cannot open ${file}: ${(err as Error).message}`);
      return EXIT.NOINPUT;
    }
    try {
      const query = { ...(sinceAt !== undefined ? { sinceAt } : {}), limit };
      // A model's shadow (models[].shadow) is recorded as <name>#shadow: shown right after the model itself.
      const rows = values.model === undefined ? readInferences(db, query)
        : [...readInferences(db, { ...query, model: values.model }), ...readInferences(db, { ...query, model: `${values.model}#shadow` })].slice(0, limit);
      for (const row of rows) {
        if (values.json) {
          io.out(JSON.stringify({
            ts: row.ts, model: row.model, version: row.version ?? null, outputs: row.outputs ?? {},
            ...(row.skipped !== undefined ? { skipped: row.skipped } : {}), ...(row.detail !== undefined ? { detail: row.detail } : {}),
          }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
        } else {
          const outputs = Object.entries(row.outputs ?? {}).map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.map(fmt).join(', ')}]` : fmt(v)}`).join(' ');
          io.out(`${new Date(row.ts).toISOString()}  ${row.model}  ${row.version ?? '-'}  ${row.skipped ? `skipped: ${row.skipped}${row.detail ? ` (${row.detail})` : ''}` : outputs}`);
        }
      }
      if (!values.json && rows.length === 0) io.err('(no inference recorded for that selection)');
      return EXIT.OK;
    } catch (err) {
      io.err(`lineguard outputs: cannot read ${file}: ${(err as Error).message} (is it a Lineguard buffer of this version?)`);
      return EXIT.DATAERR;
    } finally {
      db.close();
    }
  },
};

/** The buffer file of a config: only gateway.stateDir and buffer.file are read (secrets need not resolve). */
function databaseOf(configFile: string, err: (line: string) => void): string {
  let stateDir = DEFAULT_STATE_DIR;
  let file = 'lineguard.db';
  try {
    const doc = parseYaml(readFileSync(configFile, 'utf8')) as { gateway?: { stateDir?: unknown }; buffer?: { file?: unknown } } | null;
    const base = path.dirname(path.resolve(configFile));
    if (typeof doc?.gateway?.stateDir === 'string' && doc.gateway.stateDir.length > 0) stateDir = path.resolve(base, doc.gateway.stateDir);
    if (typeof doc?.buffer?.file === 'string' && doc.buffer.file.length > 0) file = doc.buffer.file;
  } catch (e) {
    err(`(no readable config at ${configFile}: ${(e as NodeJS.ErrnoException).code ?? 'invalid YAML'}; using ${DEFAULT_STATE_DIR})`);
  }
  return path.isAbsolute(file) ? file : path.join(stateDir, file);
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(6)).toString();
}
