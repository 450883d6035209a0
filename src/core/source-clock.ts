import type { TagSample } from './tag-sample.js';

/**
 * Time, as the gateway understands it. Three clocks, never mixed up:
 *
 * - **Source time**: the PLC's or device's timestamp on a sample (`TagSample.ts`). The data's own time: windows,
 *   alert rules and the inference record are on source time, so a replay, a backtest and the live line agree.
 * - **Receive time**: the gateway's wall clock when the sample arrived (`TagSample.receivedAt`). Only used to
 *   measure each source's clock offset (receive − source) and to restamp samples the policy does not trust.
 * - **Monotonic time** (`monotonicMs()`): every internal timer, deadline, backoff, watchdog and budget. It never
 *   jumps when NTP or an operator sets the wall clock.
 *
 * Clock policy per source (`clock:` of an OPC UA server or MQTT source):
 * - `timestamps: source` (default): source time is kept. `timestamps: gateway`: every sample is stamped with its
 *   receive time (devices without a trustworthy clock).
 * - A sample stamped more than `maxSkewMs` ahead of the gateway's clock (a PLC in 2030, a dead RTC battery that
 *   counts from a random date) is restamped with its receive time minus the source's measured offset, and counted
 *   (`future`). Past timestamps are kept: a tag that reports by exception legitimately carries the time of its last
 *   change, which may be days old.
 * - A **clock step** is a jump of the source's clock by more than `stepThresholdMs`: backwards when a tag reports a
 *   time before its own previous sample (a tag's samples are in order, even when delivered late); forwards when the
 *   source's newest time jumps ahead by more than the real time that passed. A step is counted, logged (rate
 *   limited by the caller) and announced to listeners (the model runtime resets the affected windows and alert
 *   timers), and the source's timeline starts again from the sample that showed it.
 */

/** Milliseconds on the monotonic clock (CLOCK_MONOTONIC-based `performance.now()`); only differences mean anything. */
export function monotonicMs(): number {
  return performance.now();
}

/** The gateway's wall clock, epoch ms. Named, so that every use of wall time is a decision, not a habit. */
export function wallClockMs(): number {
  return Date.now();
}

export interface ClockPolicy {
  timestamps: 'source' | 'gateway';
  /** Samples stamped further ahead of receive time than this are restamped (ms). */
  maxSkewMs: number;
  /** A jump of the source's clock larger than this is a clock step (ms). */
  stepThresholdMs: number;
}

export const DEFAULT_CLOCK_POLICY: ClockPolicy = { timestamps: 'source', maxSkewMs: 86_400_000, stepThresholdMs: 300_000 };

/** A detected jump of one source's clock. */
export interface ClockStep {
  source: string;
  /** New source time minus the old one at the step, ms: negative when the clock went back. */
  deltaMs: number;
  /** The first source timestamp of the new timeline. */
  newTs: number;
  /** Receive time of the sample that showed the step. */
  at: number;
  /** The tag whose sample showed it. */
  tag: string;
}

/** What /healthz and the metrics show for one source's clock. */
export interface SourceClockState {
  source: string;
  timestamps: 'source' | 'gateway';
  /** Receive − source time, ms, the smallest of the recent samples that advanced the source's time (NTP style). */
  offsetMs: number | null;
  steps: number;
  lastStep: ClockStep | null;
  /** Samples restamped because they were too far ahead. */
  future: number;
  /** Samples that came with a gateway-time stamp to be mapped onto the source's timeline (connection-loss markers). */
  mapped: number;
  /** Newest source time seen, epoch ms. */
  newestTs: number | null;
}

const OFFSET_RING = 32;

/** One source's clock: offset, steps, and the current source time extrapolated on the monotonic clock. */
export class SourceClock {
  readonly #lastTsByTag = new Map<string, number>();
  readonly #offsets: number[] = [];
  #newestTs = Number.NEGATIVE_INFINITY;
  #newestMono = 0;
  #steps = 0;
  #lastStep: ClockStep | null = null;
  #future = 0;
  #mapped = 0;

  constructor(
    readonly source: string,
    readonly policy: ClockPolicy,
  ) {}

  /** Receive − source, ms (undefined until a sample advanced the source's time). */
  get offsetMs(): number | undefined {
    return this.#offsets.length === 0 ? undefined : Math.min(...this.#offsets);
  }

  /**
   * The source's current time, estimated: its newest timestamp plus the monotonic time since that sample arrived.
   * A source whose clock runs faster than ours (a replay at accelerated time) is underestimated, never overrun.
   */
  sourceNow(monoNow: number = monotonicMs()): number | undefined {
    if (!Number.isFinite(this.#newestTs)) return undefined;
    return this.#newestTs + Math.max(0, monoNow - this.#newestMono);
  }

  /**
   * Applies the policy to one sample in place (sets `receivedAt`, may rewrite `ts`). Returns the step the sample
   * showed, if any.
   */
  stamp(sample: TagSample, receivedAt: number, monoNow: number): ClockStep | undefined {
    sample.receivedAt = receivedAt;
    if (!(typeof sample.ts === 'number' && Math.abs(sample.ts) <= 8.64e15)) return undefined; // the buffer counts it
    if (this.policy.timestamps === 'gateway') {
      sample.ts = receivedAt;
      this.#advance(sample.ts, receivedAt, monoNow);
      return undefined;
    }
    if (sample.timeBase === 'gateway') {
      // A marker the connector made (connection lost): put it on the source's timeline.
      delete sample.timeBase;
      this.#mapped++;
      const offset = this.offsetMs;
      sample.ts = offset === undefined ? receivedAt : Math.max(receivedAt - offset, Number.isFinite(this.#newestTs) ? this.#newestTs : -Infinity);
      this.#lastTsByTag.set(sample.tag, sample.ts);
      return undefined;
    }
    if (sample.ts > receivedAt + this.policy.maxSkewMs) {
      this.#future++;
      const offset = this.offsetMs ?? 0;
      sample.ts = receivedAt - offset;
    }
    const ts = sample.ts;
    let step: ClockStep | undefined;
    const tagLast = this.#lastTsByTag.get(sample.tag);
    if (tagLast !== undefined && ts < tagLast - this.policy.stepThresholdMs) {
      step = { source: this.source, deltaMs: ts - tagLast, newTs: ts, at: receivedAt, tag: sample.tag };
    } else if (Number.isFinite(this.#newestTs) && ts - this.#newestTs - (monoNow - this.#newestMono) > this.policy.stepThresholdMs) {
      step = { source: this.source, deltaMs: ts - this.#newestTs, newTs: ts, at: receivedAt, tag: sample.tag };
    }
    if (step) {
      this.#steps++;
      this.#lastStep = step;
      this.#lastTsByTag.clear();
      this.#offsets.length = 0;
      this.#newestTs = Number.NEGATIVE_INFINITY;
    }
    if (tagLast === undefined || ts > tagLast || step) this.#lastTsByTag.set(sample.tag, ts);
    this.#advance(ts, receivedAt, monoNow);
    return step;
  }

  state(): SourceClockState {
    const offset = this.offsetMs;
    return {
      source: this.source,
      timestamps: this.policy.timestamps,
      offsetMs: offset ?? null,
      steps: this.#steps,
      lastStep: this.#lastStep,
      future: this.#future,
      mapped: this.#mapped,
      newestTs: Number.isFinite(this.#newestTs) ? this.#newestTs : null,
    };
  }

  #advance(ts: number, receivedAt: number, monoNow: number): void {
    if (ts <= this.#newestTs) return;
    this.#newestTs = ts;
    this.#newestMono = monoNow;
    this.#offsets.push(receivedAt - ts);
    if (this.#offsets.length > OFFSET_RING) this.#offsets.shift();
  }
}

export type ClockStepListener = (step: ClockStep) => void;

/** What a component may ask of the clocks (the model runtime: current source time, steps). */
export interface SourceClockView {
  /** The estimated current time of `source`, or undefined when nothing came from it yet. */
  sourceNow(source: string, monoNow?: number): number | undefined;
  /** Announces clock steps; returns the function that removes the listener. */
  onStep(listener: ClockStepListener): () => void;
  states(): SourceClockState[];
}

/**
 * Every source's clock, applied to each batch on the tag bus before any consumer sees it (the buffer stores, and
 * the models read, the same corrected time). Policies come from the config by source name (`opcua/plc1`,
 * `mqtt-source/devices`); unknown sources get the default.
 */
export class SourceClocks implements SourceClockView {
  readonly #clocks = new Map<string, SourceClock>();
  readonly #policies = new Map<string, ClockPolicy>();
  readonly #listeners = new Set<ClockStepListener>();

  constructor(
    private readonly now: () => number = wallClockMs,
    private readonly mono: () => number = monotonicMs,
    private readonly onListenerError: (err: unknown) => void = () => {},
  ) {}

  /** Sets the policy of `source` (on start and reload; the source's measured state is kept if unchanged). */
  setPolicy(source: string, policy: ClockPolicy): void {
    const previous = this.#policies.get(source);
    this.#policies.set(source, policy);
    if (previous && JSON.stringify(previous) !== JSON.stringify(policy)) this.#clocks.delete(source);
  }

  clock(source: string): SourceClock {
    let clock = this.#clocks.get(source);
    if (!clock) {
      clock = new SourceClock(source, this.#policies.get(source) ?? DEFAULT_CLOCK_POLICY);
      this.#clocks.set(source, clock);
    }
    return clock;
  }

  /** The bus stage: stamps every sample of the batch in place. */
  readonly stamp = (samples: readonly TagSample[]): void => {
    if (samples.length === 0) return;
    const receivedAt = this.now();
    const mono = this.mono();
    let clock: SourceClock | undefined;
    for (const sample of samples) {
      if (typeof sample !== 'object' || sample === null) continue;
      const source = typeof sample.source === 'string' ? sample.source : '';
      if (clock?.source !== source) clock = this.clock(source);
      const step = clock.stamp(sample, receivedAt, mono);
      if (step) this.#announce(step);
    }
  };

  sourceNow(source: string, monoNow: number = this.mono()): number | undefined {
    return this.#clocks.get(source)?.sourceNow(monoNow);
  }

  onStep(listener: ClockStepListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  states(): SourceClockState[] {
    return [...this.#clocks.values()].map((c) => c.state());
  }

  #announce(step: ClockStep): void {
    for (const listener of this.#listeners) {
      try {
        listener(step);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
