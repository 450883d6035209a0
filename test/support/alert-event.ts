import type { AlertEvent } from '../../src/core/alert.js';

/**
 * A complete, valid AlertEvent numbered `n` (eventId `evt-<n>`; even n raise, odd n clear) for outbox and sink
 * tests. `historyPoints` sets the number of contributing-tag values (more = a heavier payload).
 */
export function makeAlert(n: number, overrides: Partial<AlertEvent> = {}, historyPoints = 8): AlertEvent {
  const history: Array<[number, number | null]> = Array.from({ length: historyPoints }, (_, i) => [1_700_000_000_000 + i * 100, i * 0.5]);
  return {
    schema: 1,
    eventId: `evt-${n}`,
    alertId: `alert-${Math.floor(n / 2)}`,
    state: n % 2 === 0 ? 'raised' : 'cleared',
    kind: 'equipment_fault',
    severity: 'major',
    gateway: 'gw-test',
    asset: 'press-line-1/press1',
    model: { name: 'press-fault', version: '1.0.0', hash: 'sha256:0123' },
    provider: 'cpu',
    output: { name: 'failure_probability', value: 0.93 },
    rule: { raiseAbove: 0.8, clearBelow: 0.5, forSamples: 3 },
    ts: 1_700_000_000_000 + n,
    raisedAt: 1_700_000_000_000 + n,
    inputs: { 'press1.torque': history },
    message: `alert number ${n}`,
    ...overrides,
  };
}

/** The same alert attributed to another model (sink tests publish to one topic per model). */
export function makeModelAlert(n: number, modelName: string): AlertEvent {
  return makeAlert(n, { model: { name: modelName, version: '1.0.0', hash: 'sha256:0123' } });
}
