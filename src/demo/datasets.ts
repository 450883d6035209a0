import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';

/** One AI4I 2020 process (a row of ai4i2020.csv), in process order. */
export interface Ai4iRow {
  udi: number;
  type: 'L' | 'M' | 'H';
  airTemperatureK: number;
  processTemperatureK: number;
  rotationalSpeedRpm: number;
  torqueNm: number;
  toolWearMin: number;
  machineFailure: boolean;
  modes: { TWF: boolean; HDF: boolean; PWF: boolean; OSF: boolean; RNF: boolean };
}

/** Reads ai4i2020.csv as shipped (UTF-8 with BOM, CRLF line ends; see models/data/ai4i2020/PROVENANCE.md). */
export function loadAi4i(file: string): Ai4iRow[] {
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  const [header, ...lines] = text.split(/\r?\n/).filter((l) => l.length > 0);
  const columns = header!.split(',');
  const col = (name: string): number => {
    const i = columns.indexOf(name);
    if (i < 0) throw new Error(`${file}: column "${name}" missing`);
    return i;
  };
  const idx = {
    udi: col('UDI'), type: col('Type'), air: col('Air temperature [K]'), process: col('Process temperature [K]'),
    speed: col('Rotational speed [rpm]'), torque: col('Torque [Nm]'), wear: col('Tool wear [min]'), failure: col('Machine failure'),
    TWF: col('TWF'), HDF: col('HDF'), PWF: col('PWF'), OSF: col('OSF'), RNF: col('RNF'),
  };
  return lines.map((line) => {
    const f = line.split(',');
    const n = (i: number): number => Number(f[i]);
    return {
      udi: n(idx.udi),
      type: f[idx.type] as Ai4iRow['type'],
      airTemperatureK: n(idx.air),
      processTemperatureK: n(idx.process),
      rotationalSpeedRpm: n(idx.speed),
      torqueNm: n(idx.torque),
      toolWearMin: n(idx.wear),
      machineFailure: f[idx.failure] === '1',
      modes: { TWF: f[idx.TWF] === '1', HDF: f[idx.HDF] === '1', PWF: f[idx.PWF] === '1', OSF: f[idx.OSF] === '1', RNF: f[idx.RNF] === '1' },
    };
  });
}

/** One engine cycle of C-MAPSS: unit, cycle, 3 operational settings, 21 sensors (s1..s21). */
export interface CmapssCycle {
  unit: number;
  cycle: number;
  settings: [number, number, number];
  sensors: number[];
}

/** Reads a C-MAPSS text file (space separated, optionally gzipped). */
export function loadCmapss(file: string): CmapssCycle[] {
  const raw = readFileSync(file);
  const text = (path.extname(file) === '.gz' ? gunzipSync(raw) : raw).toString('utf8');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((line) => {
      const v = line.split(/\s+/).map(Number);
      return { unit: v[0]!, cycle: v[1]!, settings: [v[2]!, v[3]!, v[4]!], sensors: v.slice(5, 26) };
    });
}

/** Groups cycles by engine, each engine's cycles in order. */
export function enginesOf(cycles: readonly CmapssCycle[]): Map<number, CmapssCycle[]> {
  const engines = new Map<number, CmapssCycle[]>();
  for (const c of cycles) {
    const list = engines.get(c.unit) ?? [];
    list.push(c);
    engines.set(c.unit, list);
  }
  return engines;
}

/** One detected surface defect of UCI 198 Steel Plates Faults: its 27 inspection features and its true class. */
export interface SteelDefect {
  /** 1-based row number in Faults.NNA. */
  row: number;
  /** Feature values by the UCI column name (X_Minimum, ..., SigmoidOfAreas), in file order. */
  features: Array<[name: string, value: number]>;
  /** The class the inspectors gave it (Pastry, Z_Scratch, K_Scatch, Stains, Dirtiness, Bumps, Other_Faults). */
  defectClass: string;
}

/**
 * Reads Faults.NNA (tab-separated, each line in double quotes, CRLF) with the column names of Faults27x7_var:
 * 27 features, then 7 one-hot classes (see models/data/uci-steel-plates-faults/PROVENANCE.md).
 */
export function loadSteelPlates(dir: string): SteelDefect[] {
  const names = readFileSync(path.join(dir, 'Faults27x7_var'), 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  if (names.length !== 34) throw new Error(`${dir}/Faults27x7_var: expected 34 column names, found ${names.length}`);
  const featureNames = names.slice(0, 27);
  const classNames = names.slice(27);
  return readFileSync(path.join(dir, 'Faults.NNA'), 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim().replace(/^"|"$/g, ''))
    .filter((l) => l.length > 0)
    .map((line, i) => {
      const v = line.split('\t').map(Number);
      if (v.length !== 34) throw new Error(`${dir}/Faults.NNA row ${i + 1}: ${v.length} values, expected 34`);
      const cls = classNames[v.slice(27).indexOf(1)];
      if (cls === undefined) throw new Error(`${dir}/Faults.NNA row ${i + 1}: no class`);
      return { row: i + 1, features: featureNames.map((n, j) => [n, v[j]!] as [string, number]), defectClass: cls };
    });
}
