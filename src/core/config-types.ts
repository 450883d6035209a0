import { Type, type TSchema, type SchemaOptions, type StringOptions } from '@sinclair/typebox';
import { DURATION_PATTERN, SIZE_PATTERN } from './units.js';

/**
 * Schema building blocks shared by every config section. Each section (src/connectors/opcua/config.ts, ...)
 * declares its own fields once with these; the daemon composes the sections, derives the TypeScript types with
 * `Static<>`, validates with Ajv and generates the JSON Schema and the commented example from the same objects.
 *
 * Every field carries a `description` (shown in the example config and in editors) and, where it has one, a
 * `default` (filled in by the loader). `examples[0]` is what the generated example config shows.
 */

/** A duration such as `30s` or `7d`; parse with `parseDuration`. */
export const Duration = (options: StringOptions = {}): ReturnType<typeof Type.String> =>
  Type.String({ pattern: DURATION_PATTERN, ...options, 'x-lineguard': 'duration' });

/** A size such as `512MB` or `2GB`; parse with `parseSize`. */
export const ByteSize = (options: StringOptions = {}): ReturnType<typeof Type.String> =>
  Type.String({ pattern: SIZE_PATTERN, ...options, 'x-lineguard': 'size' });

/**
 * A secret (password, key passphrase). The file should hold `${env:NAME}` or
 * `${file:/run/credentials/lineguard.service/NAME}`; the loader substitutes it and the value is redacted from logs.
 */
export const Secret = (options: StringOptions = {}): ReturnType<typeof Type.String> =>
  Type.String({ ...options, 'x-lineguard': 'secret' });

/** A strict object: unknown keys are errors (typos are the most common config mistake). */
export const Section = <T extends Parameters<typeof Type.Object>[0]>(properties: T, options: SchemaOptions = {}) =>
  Type.Object(properties, { additionalProperties: false, ...options });

/** A name used in tag names, topics, metric labels and file names. */
export const Name = (options: StringOptions = {}): ReturnType<typeof Type.String> =>
  Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.\\-]*$', minLength: 1, maxLength: 128, ...options, 'x-lineguard': 'name' });

export type { TSchema };

/**
 * The largest delay Node's timers take (2^31−1 ms, about 24.8 days): a larger one fires after 1 ms with a
 * TimeoutOverflowWarning, so a timer field with a larger value would run its job in a tight loop.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Bound of the thresholds and other free numbers of the config: finite (YAML `.nan`/`.inf` are refused by the
 * loader's Ajv `strictNumbers`) and small enough to stay exact in a double.
 */
export const MAX_CONFIG_NUMBER = 1e15;

/**
 * Cross-field checks a section cannot express in JSON Schema (a password without a username, a tag name used
 * twice...). `path` is the key path inside the whole config file, e.g. `['opcua', 0, 'tags', 3, 'nodeId']`;
 * the loader turns it into `FILE:LINE:COL opcua[0].tags[3].nodeId: message`.
 */
export type ConfigIssueReporter = (path: ReadonlyArray<string | number>, message: string) => void;

/**
 * `clock:` of a source (OPC UA server, MQTT source): how its timestamps are trusted. The policy itself is in
 * src/core/source-clock.ts; this is its config shape, declared once for every kind of source.
 */
export const ClockPolicySchema = Section(
  {
    timestamps: Type.Union([Type.Literal('source'), Type.Literal('gateway')], {
      description:
        'source: samples keep the PLC/device timestamp (windows and alerts are on that time); gateway: every sample is ' +
        'stamped with the time it arrived (for devices without a trustworthy clock).',
      default: 'source',
    }),
    maxSkewMs: Type.Integer({
      description:
        'A sample stamped more than this ahead of the gateway clock (a PLC clock in the wrong year) is restamped with its ' +
        'arrival time minus the source\'s measured offset, and counted in lineguard_source_clock_restamped_total.',
      minimum: 1000, maximum: 315_576_000_000, default: 86_400_000,
    }),
    stepThresholdMs: Type.Integer({
      description:
        'A jump of the source clock larger than this (backwards, or forwards by more than the time that passed) is a clock ' +
        'step: counted, logged, and the models reading the source restart their windows and alert timers on the new timeline.',
      minimum: 1000, maximum: MAX_TIMER_MS, default: 300_000,
    }),
  },
  { description: 'How the gateway treats this source\'s timestamps (README: "Time").', default: {} },
);
