/**
 * MQTT topic filters (MQTT 3.1.1 §4.7): `+` matches one level, `#` the rest (and must be last). Used to check the
 * config and to drop messages a persistent session still delivers for filters the config no longer has.
 */

/** Why a topic filter is invalid, or undefined when it is valid. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'a topic filter cannot be empty';
  if (filter.includes('\u0000')) return 'a topic filter cannot contain the NUL character';
  if (Buffer.byteLength(filter) > 65535) return 'a topic filter is at most 65535 bytes';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return `"${filter}": # must be a whole level and the last one (e.g. plant/#)`;
    }
    if (level.includes('+') && level !== '+') return `"${filter}": + must be a whole level (e.g. plant/+/temperature)`;
  }
  return undefined;
}

/** True when `topic` matches `filter`. Topics starting with `$` match only filters that name that first level. */
export function topicMatches(filter: string, topic: string): boolean {
  return compileTopicFilter(filter)(topic);
}

/** A filter split once, for matching every message against it. */
export function compileTopicFilter(filter: string): (topic: string) => boolean {
  const f = filter.split('/');
  return (topic) => levelsMatch(f, topic);
}

function levelsMatch(f: readonly string[], topic: string): boolean {
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Strips the `$share/<group>/` prefix of a shared subscription: messages carry the plain topic. */
export function matchingFilter(filter: string): string {
  const m = /^\$share\/[^/]+\/(.*)$/.exec(filter);
  return m ? m[1]! : filter;
}
