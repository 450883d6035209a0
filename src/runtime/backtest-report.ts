import type { NamedRule } from './config.js';
import { replayRule, withRaiseThreshold, type BacktestAlert, type BacktestResult } from './backtest.js';

/**
 * What a backtest means to the engineer who tunes a rule: alerts per hour and per shift, time in alert, and how
 * that changes with the raise threshold (the sweep); with labelled faults, how many alerts were right (precision),
 * how many faults were caught (recall) and how early (lead time).
 *
 * Definitions (stated once, used by the CLI and the tests):
 * - the period is the backtest's range, `toMs − fromMs` of source time; alerts/hour = raises / period in hours;
 *   a shift is 8 h;
 * - time in alert: the sum over occurrences of (clear − raise), an occurrence still open at the end counting to `toMs`;
 * - labels are a step function of source time: each (ts, label) row holds until the next row. A labelled fault is a
 *   maximal run of positive rows, from its first positive row to the next negative row (or the last row);
 * - a raise is a true positive when it falls in [fault start − horizon, fault end] of some fault; precision =
 *   true-positive raises / raises; recall = faults with at least one raise in that interval / faults;
 * - lead time of a caught fault = fault start − its first raise in the interval (positive: before the fault;
 *   negative: a detection delay).
 */
export const SHIFT_MS = 8 * 3_600_000;

export interface AlertStats {
  raises: number;
  clears: number;
  alertsPerHour: number;
  alertsPerShift: number;
  timeInAlertMs: number;
  /** Share of the period in alert, 0..1. */
  timeInAlertFraction: number;
}

export interface LabelledFault {
  start: number;
  end: number;
}

export interface LabelScores {
  faults: number;
  caught: number;
  truePositives: number;
  precision: number;
  recall: number;
  /** Lead times of the caught faults, ms, in fault order. */
  leadTimesMs: number[];
  meanLeadMs: number;
  medianLeadMs: number;
}

export interface SweepRow extends AlertStats {
  threshold: number;
  labels?: LabelScores;
}

export function alertStats(alerts: readonly BacktestAlert[], fromMs: number, toMs: number): AlertStats {
  const periodMs = toMs - fromMs;
  const hours = periodMs / 3_600_000;
  let timeInAlertMs = 0;
  for (const a of alerts) timeInAlertMs += (a.clearedAt ?? toMs) - a.raisedAt;
  const raises = alerts.length;
  return {
    raises,
    clears: alerts.filter((a) => a.clearedAt !== undefined).length,
    alertsPerHour: hours > 0 ? raises / hours : Number.NaN,
    alertsPerShift: periodMs > 0 ? (raises * SHIFT_MS) / periodMs : Number.NaN,
    timeInAlertMs,
    timeInAlertFraction: periodMs > 0 ? timeInAlertMs / periodMs : Number.NaN,
  };
}

/** The series a rule reads in a backtest: (window end, value) of every window. */
export function ruleSeries(result: BacktestResult, ruleIndex: number): Array<{ ts: number; value: number }> {
  return result.rows.map((row) => ({ ts: row.ts, value: row.values[ruleIndex]! }));
}

/**
 * The default thresholds of a sweep: the configured one and 9 evenly spaced between the smallest and the largest
 * finite value the rule read, rounded to 4 significant digits, ascending.
 */
export function defaultThresholds(rule: NamedRule, values: readonly number[]): number[] {
  const finite = values.filter(Number.isFinite);
  const configured = rule.raiseAbove ?? rule.raiseBelow!;
  const out = new Set<number>([configured]);
  if (finite.length > 0) {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (const v of finite) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (max > min) for (let k = 1; k <= 9; k++) out.add(Number((min + ((max - min) * k) / 10).toPrecision(4)));
  }
  return [...out].sort((a, b) => a - b);
}

/** The threshold sweep of one rule: each threshold replayed with the rule's other settings (debounce, cooldown, hysteresis gap). */
export function thresholdSweep(
  result: BacktestResult, ruleIndex: number, thresholds: readonly number[],
  labels?: { faults: readonly LabelledFault[]; horizonMs: number },
): SweepRow[] {
  const rule = result.rules[ruleIndex]!;
  const series = ruleSeries(result, ruleIndex);
  return thresholds.map((threshold) => {
    const alerts = replayRule(withRaiseThreshold(rule, threshold), series);
    const row: SweepRow = { threshold, ...alertStats(alerts, result.fromMs, result.toMs) };
    if (labels) row.labels = scoreAgainstLabels(alerts, labels.faults, labels.horizonMs);
    return row;
  });
}

export function scoreAgainstLabels(alerts: readonly BacktestAlert[], faults: readonly LabelledFault[], horizonMs: number): LabelScores {
  const inFault = (t: number, f: LabelledFault): boolean => t >= f.start - horizonMs && t <= f.end;
  const truePositives = alerts.filter((a) => faults.some((f) => inFault(a.raisedAt, f))).length;
  const leadTimesMs: number[] = [];
  for (const f of faults) {
    const first = alerts.find((a) => inFault(a.raisedAt, f));
    if (first) leadTimesMs.push(f.start - first.raisedAt);
  }
  const sorted = [...leadTimesMs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return {
    faults: faults.length,
    caught: leadTimesMs.length,
    truePositives,
    precision: alerts.length > 0 ? truePositives / alerts.length : Number.NaN,
    recall: faults.length > 0 ? leadTimesMs.length / faults.length : Number.NaN,
    leadTimesMs,
    meanLeadMs: leadTimesMs.length > 0 ? leadTimesMs.reduce((a, b) => a + b, 0) / leadTimesMs.length : Number.NaN,
    medianLeadMs: sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
  };
}

/** Faults of a label series (sorted by ts): maximal runs of positive rows. */
export function labelledFaults(labels: ReadonlyArray<{ ts: number; positive: boolean }>): LabelledFault[] {
  const faults: LabelledFault[] = [];
  let start: number | undefined;
  let last = Number.NaN;
  for (const { ts, positive } of labels) {
    if (positive && start === undefined) start = ts;
    else if (!positive && start !== undefined) {
      faults.push({ start, end: ts });
      start = undefined;
    }
    last = ts;
  }
  if (start !== undefined) faults.push({ start, end: last });
  return faults;
}

/**
 * Parses a labels CSV of `ts,label` rows: ts as epoch ms or an ISO 8601 time, label 0/1 (any number: positive when
 * not 0) or true/false. A first line that is not a row is taken as the header. Throws naming the line of a bad row.
 */
export function parseLabelsCsv(text: string): Array<{ ts: number; positive: boolean }> {
  const rows: Array<{ ts: number; positive: boolean }> = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const [tsText = '', labelText = ''] = line.split(',').map((c) => c.trim().replace(/^"(.*)"$/, '$1'));
    const ts = /^-?\d+(\.\d+)?$/.test(tsText) ? Number(tsText) : Date.parse(tsText);
    const label = labelText.toLowerCase();
    const positive = label === 'true' ? true : label === 'false' ? false : label !== '' && Number.isFinite(Number(label)) ? Number(label) !== 0 : undefined;
    if (!Number.isFinite(ts) || positive === undefined) {
      if (rows.length === 0 && i === lines.findIndex((l) => l.trim() !== '')) return; // the header
      throw new Error(`line ${i + 1}: expected ts,label (epoch ms or ISO time, then 0/1 or true/false), got "${line}"`);
    }
    rows.push({ ts, positive });
  });
  return rows.sort((a, b) => a.ts - b.ts);
}
