import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A small tmpfs the test can fill, grow and remount read-only (needs root / CAP_SYS_ADMIN; CI runs as root).
 * `mount()` returns undefined where mounting is not allowed, so the caller can fall back to `max_page_count`.
 */
export class SmallFs {
  private constructor(readonly dir: string) {}

  static mount(sizeBytes: number): SmallFs | undefined {
    const dir = mkdtempSync(join(tmpdir(), 'lg-smallfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir], { stdio: 'pipe' });
      return new SmallFs(dir);
    } catch {
      rmSync(dir, { recursive: true, force: true });
      return undefined;
    }
  }

  /** Changes the size (growing it is "space came back"). */
  resize(sizeBytes: number): void {
    execFileSync('mount', ['-o', `remount,size=${sizeBytes}`, this.dir], { stdio: 'pipe' });
  }

  readOnly(on: boolean): void {
    execFileSync('mount', ['-o', on ? 'remount,ro' : 'remount,rw', this.dir], { stdio: 'pipe' });
  }

  unmount(): void {
    try {
      execFileSync('umount', ['-l', this.dir], { stdio: 'pipe' });
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
