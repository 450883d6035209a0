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
