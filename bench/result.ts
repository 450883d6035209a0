/**
 * One benchmark figure beside the baseline measured in the same run. `ratio` = value / baseline.
 * `better` says which direction is good, so the table can mark regressions.
 */
export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  baselineLabel: string;
  ratio: number | null;
  better: 'higher' | 'lower';
  /** Extra figures (CPU, RSS, p99 of the baseline...) printed under the row. */
  notes?: Record<string, number | string>;
}

export type Progress = (message: string) => void;

/** Every area's benchmark module exports `run(progress)`. */
export type BenchModule = { run(progress: Progress): Promise<BenchResult[]> };

export function result(
  name: string, value: number, unit: string, better: 'higher' | 'lower', baseline: number | null, baselineLabel: string,
  notes?: Record<string, number | string>,
): BenchResult {
  return { name, value, unit, better, baseline, baselineLabel, ratio: baseline ? value / baseline : null, ...(notes ? { notes } : {}) };
}
