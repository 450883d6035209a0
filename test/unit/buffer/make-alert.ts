import type { AlertEvent } from '../../../src/core/alert.js';

/** A valid AlertEvent for outbox tests; `n` makes the ids unique. */
export function makeAlert(n: number, overrides: Partial<AlertEvent> = {}): AlertEvent {
  return {
    schema: 1,
    eventId: `evt-${n}`,
    alertId: `alert-${Math.floor(n / 2)}`,
    state: n % 2 === 0 ? 'raised' : 'cleared',
    kind: 'equipment_fault',
    severity: 'major',
    gateway: 'gw-test',
    asset: 'press1',
    model: { name: 'press-fault', version: '1.0.0', hash: 'sha256:abc' },
    provider: 'cpu',
    output: { name: 'score', value: 0.93 },
    rule: { raiseAbove: 0.9, clearBelow: 0.7, forSamples: 3 },
    ts: 1_700_000_000_000 + n,
    raisedAt: 1_700_000_000_000,
    inputs: { 'press1.torque': [[1_700_000_000_000, 12.5], [1_700_000_000_100, null]] },
    message: `press1 torque anomaly ${n}`,
    ...overrides,
  };
}
