import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface WatcherOptions {
  /** Quiet time after the last change before `onChange` (a copy writes in many chunks). */
  debounceMs: number;
  /** Stat poll, for file systems where inotify misses changes (network mounts, some overlays). */
  pollMs: number;
  onChange: () => void;
  onError: (err: Error) => void;
}

/**
 * Watches one model file for replacement. The directory is watched rather than the file, because the usual way
 * to deploy (write a temp file, rename it over the old one) replaces the inode a file watch would follow; a slow
 * stat poll backs the watch up. Changes are debounced; the caller decides by content hash whether anything
 * really changed.
 */
export class ModelFileWatcher {
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #last: string | undefined;
  #stopped = false;

  constructor(private readonly path: string, private readonly options: WatcherOptions) {}

  async start(): Promise<void> {
    this.#last = await this.#signature();
    // stop() may have run while the first stat was pending: it found nothing to close, so nothing may be opened now.
    if (this.#stopped) return;
    const name = basename(this.path);
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.#changed();
      });
      this.#watcher.on('error', (err) => this.options.onError(err));
    } catch (err) {
      // A missing directory: the poll still notices when the file appears.
      this.options.onError(err as Error);
    }
    this.#poll = setInterval(() => {
      void this.#signature().then((sig) => {
        if (sig !== this.#last) this.#changed();
      });
    }, this.options.pollMs);
    this.#poll.unref();
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#poll) clearInterval(this.#poll);
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#poll = undefined;
    this.#debounce = undefined;
  }

  #changed(): void {
    if (this.#stopped) return;
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.#signature().then((sig) => {
        if (this.#stopped) return;
        this.#last = sig;
        this.options.onChange();
      });
    }, this.options.debounceMs);
  }

  /** Size, mtime and inode: changes whenever the file is rewritten or replaced. */
  async #signature(): Promise<string> {
    try {
      const s = await stat(this.path);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }
}
