/**
 * Tag name templates over topic levels: `press1.{3}.rms` applied to `plant/press1/axis-x/telemetry` gives
 * `press1.axis-x.rms`. `{1}` is the first level, `{topic}` the whole topic.
 */

/** A compiled template. */
export interface TagTemplate {
  /** The tag name for a topic split into levels, or undefined when the topic has too few levels. */
  render(levels: readonly string[], topic: string): string | undefined;
  /** Highest level number used (0 when none). */
  readonly maxLevel: number;
  /** True when the template uses no placeholder (every message gives the same tag). */
  readonly constant: boolean;
}

type Part = { text: string } | { level: number } | { topic: true };

/** Compiles a template, or returns a message saying what is wrong with it. */
export function parseTagTemplate(template: string): TagTemplate | string {
  const parts: Part[] = [];
  let maxLevel = 0;
  let constant = true;
  const re = /\{([^{}]*)\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    if (m.index > last) parts.push({ text: template.slice(last, m.index) });
    const field = m[1]!;
    if (field === 'topic') {
      parts.push({ topic: true });
    } else if (/^[1-9]\d*$/.test(field)) {
      const level = Number(field);
      maxLevel = Math.max(maxLevel, level);
      parts.push({ level });
    } else {
      return `unknown placeholder {${field}} in "${template}"; use {1}, {2}... for topic levels or {topic}`;
    }
    constant = false;
    last = re.lastIndex;
  }
  if (last < template.length) parts.push({ text: template.slice(last) });
  const literal = parts.map((p) => ('text' in p ? p.text : '')).join('');
  if (/[{}]/.test(literal)) return `unbalanced brace in "${template}"`;

  return {
    maxLevel,
    constant,
    render(levels, topic) {
      let out = '';
      for (const part of parts) {
        if ('text' in part) out += part.text;
        else if ('level' in part) {
          const level = levels[part.level - 1];
          if (level === undefined) return undefined;
          out += level;
        } else out += topic;
      }
      return out;
    },
  };
}
