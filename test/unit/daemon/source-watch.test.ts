import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteAlertOutbox } from '../../../src/buffer/alert-outbox.js';
import type { ComponentHealth } from '../../../src/core/component.js';
import { SourceWatch } from '../../../src/daemon/source-watch.js';
import { runtimeContext } from '../runtime/runtime-context.js';

/**
 * source_unavailable timing on a fake clock, with a real outbox: the alert is raised once a source has been down for
 * gateway.sourceUnavailable.afterMs — counted from the first check that saw it down, so a source that goes down just
 * after a check is not reported a check early — and cleared at the first check that sees it back.
 */
const AFTER_MS = 2000;
let ctx: ReturnType<typeof runtimeContext>;
let outbox: SqliteAlertOutbox;
let watch: SourceWatch | undefined;
let state: ComponentHealth['state'] = 'up';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance', 'Date'] });
  ctx = runtimeContext();
  outbox = SqliteAlertOutbox.open(join(ctx.stateDir, 'lineguard.db'));
  state = 'up';
});

afterEach(async () => {
  await watch?.stop();
  watch = undefined;
  outbox.close();
  ctx.cleanup();
  vi.useRealTimers();
});

async function startWatch(): Promise<void> {
  watch = new SourceWatch({ enabled: true, afterMs: AFTER_MS, severity: 'major' }, ['opcua/plc'],
    () => ({ state, ...(state === 'up' ? {} : { reason: 'connection refused' }) }), outbox, ctx);
  await watch.start(new AbortController().signal);
}

const events = (): Array<[string, string]> => outbox.peek(100).map((e) => [e.alert.state, e.alert.source ?? '']);

describe('SourceWatch', () => {
  it('a source that goes down just after a check: raised only after afterMs of outage, not a check earlier', async () => {
    await startWatch();
    await vi.advanceTimersByTimeAsync(1000); // a check sees it up
    await vi.advanceTimersByTimeAsync(10);
    state = 'down';
    // The last check that saw it up was 10 ms before the outage: afterMs since then is not afterMs of outage.
    await vi.advanceTimersByTimeAsync(AFTER_MS - 10);
    expect(events()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(events()).toEqual([['raised', 'opcua/plc']]);
    expect(watch!.health().details).toMatchObject({ unavailable: ['opcua/plc'] });
    state = 'up';
    await vi.advanceTimersByTimeAsync(1000);
    expect(events()).toEqual([['raised', 'opcua/plc'], ['cleared', 'opcua/plc']]);
    const [raised, cleared] = outbox.peek(2).map((e) => e.alert);
    expect(cleared!.alertId).toBe(raised!.alertId);
  });

  it('a source never up since the start: raised afterMs after the start', async () => {
    state = 'starting';
    await startWatch();
    await vi.advanceTimersByTimeAsync(AFTER_MS - 1);
    expect(events()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(events()).toEqual([['raised', 'opcua/plc']]);
  });

  it('an outage shorter than afterMs raises nothing, even when afterMs passed since the last check that saw it up', async () => {
    await startWatch();
    await vi.advanceTimersByTimeAsync(1010);
    state = 'down';
    // Down for afterMs - 10 ms, the check at its end included.
    await vi.advanceTimersByTimeAsync(AFTER_MS - 10);
    state = 'up';
    await vi.advanceTimersByTimeAsync(5000);
    expect(events()).toEqual([]);
  });
});
