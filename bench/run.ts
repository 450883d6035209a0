import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchModule, BenchResult } from './result.js';

/**
 * `npm run bench`: every area's benchmark, one table, each figure beside the baseline measured in the same run,
 * and bench/results.json. `BENCH_ONLY=buffer,mqtt` runs a subset.
 */
const MODULES: Array<[string, () => Promise<BenchModule>]> = [
  ['buffer', () => import('./buffer.js')],
  ['mqtt', () => import('./mqtt.js')],
  ['runtime', () => import('./runtime.js')],
  ['windows', () => import('./windows.js')],
  ['idle', () => import('./idle.js')],
  ['opcua', () => import('./opcua.js')],
  ['e2e', () => import('./e2e.js')],
];

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fileURLToPath(import.meta.url).includes('/dist/') ? '../..' : '..');

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
  const results: BenchResult[] = [];
  const failures: string[] = [];
  const started = Date.now();
  for (const [name, load] of MODULES) {
    if (only && !only.includes(name)) continue;
    const t0 = Date.now();
    log(`── ${name}: starting`);
    try {
      const module = await load();
      const produced = await module.run((message) => log(`   ${name}: ${message}`));
      results.push(...produced);
      log(`── ${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    } catch (err) {
      failures.push(`${name}: ${(err as Error).stack ?? String(err)}`);
      log(`── ${name}: FAILED: ${(err as Error).message}`);
    }
  }
  process.stdout.write(`\n${table(results)}\n`);
  const out = path.join(ROOT, 'bench', 'results.json');
  mkdirSync(path.dirname(out), { recursive: true });
  const json = results.map(({ name, value, unit, baseline, ratio, better, baselineLabel, notes }) => ({
    name, value, unit, baseline, ratio, better, baselineLabel, ...(notes ? { notes } : {}),
  }));
  writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\nwrote ${out} (${results.length} figures) in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  if (failures.length > 0) {
    process.stderr.write(`\n${failures.length} benchmark module(s) failed:\n${failures.join('\n\n')}\n`);
    process.exitCode = 1;
  }
}

function table(results: BenchResult[]): string {
  const rows = results.map((r) => [
    r.name,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline === null ? '—' : `${fmt(r.baseline)} ${r.unit}`,
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    `${r.better} is better`,
    r.baselineLabel,
  ]);
  const header = ['benchmark', 'lineguard', 'baseline', 'ratio', '', 'baseline is'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 1 || i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  const notes = results
    .filter((r) => r.notes && Object.keys(r.notes).length > 0)
    .map((r) => `  ${r.name}: ${Object.entries(r.notes!).map(([k, v]) => `${k}=${typeof v === 'number' ? fmt(v) : v}`).join(', ')}`);
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line), ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(3);
}

function log(message: string): void {
  process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

await main();
