import type { Database, Statement } from 'better-sqlite3';

/**
 * Tag name → integer id, from the `tags` table. Samples store the id (a small integer key keeps the samples table
 * compact); the map is loaded once and grows as new tags arrive.
 */
export class TagRegistry {
  readonly #ids = new Map<string, number>();
  readonly #insert: Statement<[string, string]>;
  /** Ids created inside the current transaction; only made visible once it committed. */
  readonly #uncommitted = new Map<string, number>();

  constructor(db: Database) {
    for (const row of db.prepare('SELECT id, name FROM tags').iterate() as IterableIterator<{ id: number; name: string }>) {
      this.#ids.set(row.name, row.id);
    }
    this.#insert = db.prepare('INSERT INTO tags (name, source) VALUES (?, ?) RETURNING id');
  }

  /** The id of a known tag, or undefined. */
  id(name: string): number | undefined {
    return this.#ids.get(name);
  }

  /** Every known tag id. */
  ids(): number[] {
    return [...this.#ids.values()];
  }

  get size(): number {
    return this.#ids.size;
  }

  /**
   * The id of `name`, inserting the tag when it is new. Call inside a write transaction, then `commit()` after
   * it committed or `rollback()` after it failed, so the map never holds an id the file does not.
   */
  ensure(name: string, source: string): number {
    const known = this.#ids.get(name) ?? this.#uncommitted.get(name);
    if (known !== undefined) return known;
    const row = this.#insert.get(name, source) as { id: number };
    this.#uncommitted.set(name, row.id);
    return row.id;
  }

  commit(): void {
    for (const [name, id] of this.#uncommitted) this.#ids.set(name, id);
    this.#uncommitted.clear();
  }

  rollback(): void {
    this.#uncommitted.clear();
  }
}
