import type { IngestProblem } from './ingest-problem.js';

/**
 * Tags one MQTT source accepts at most. A topic template turns every new topic into a new tag; 200,000 distinct
 * names once grew the gateway by 55 MB (never released) and made the idle gateway use 9 % of a core. 20,000 fits a
 * big line (a press line has hundreds to a few thousand signals).
 */
export const MAX_TAGS_PER_SOURCE = 20_000;
/** Longest tag name accepted (a 5,006-character name was once accepted from a topic level). */
export const MAX_TAG_NAME_LENGTH = 256;

/**
 * Keeps the set of tags a source delivers bounded: a known tag always passes; a new one passes while there is room
 * and its name is not too long. A refused tag is reported as a value problem (counted in
 * `lineguard_mqtt_dropped_values_total{reason="too_many_tags"|"tag_name_too_long"}`, logged at a limited rate);
 * it never displaces a tag already known. The known set is what the source marks BadNoCommunication on a lost
 * connection.
 */
export class TagAdmission {
  readonly #known = new Set<string>();
  #refused = 0;

  constructor(
    readonly maxTags = MAX_TAGS_PER_SOURCE,
    readonly maxNameLength = MAX_TAG_NAME_LENGTH,
  ) {}

  /** undefined when `tag` may be published; otherwise why not. */
  admit(tag: string): IngestProblem | undefined {
    if (this.#known.has(tag)) return undefined;
    if (tag.length > this.maxNameLength) {
      this.#refused++;
      return {
        reason: 'tag_name_too_long', scope: 'value',
        detail: `tag name of ${tag.length} characters is longer than ${this.maxNameLength}: ${tag.slice(0, 60)}...`,
      };
    }
    if (this.#known.size >= this.maxTags) {
      this.#refused++;
      return { reason: 'too_many_tags', scope: 'value', detail: `new tag ${tag.slice(0, 80)} refused: this source already has ${this.maxTags} tags` };
    }
    this.#known.add(tag);
    return undefined;
  }

  /** Tags no longer delivered (a Sparkplug node or device died): their room is free again. */
  forget(tags: Iterable<string>): void {
    for (const tag of tags) this.#known.delete(tag);
  }

  /** Every tag admitted and not forgotten. */
  get known(): ReadonlySet<string> {
    return this.#known;
  }

  /** Samples refused since the start. */
  get refused(): number {
    return this.#refused;
  }
}
