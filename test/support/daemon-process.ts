import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface LogLine {
  level: number;
  msg: string;
  component?: string;
  [key: string]: unknown;
}

/**
 * `lineguard run` as systemd runs it: a child process with JSON log lines on stdout. The helpers wait for log
 * lines by predicate, so tests follow what the daemon says it did rather than sleeping.
 */
export class DaemonProcess {
  readonly lines: LogLine[] = [];
  readonly rawStdout: string[] = [];
  stderr = '';
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [path.resolve('bin/lineguard'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const raw = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.rawStdout.push(raw);
        try {
          const line = JSON.parse(raw) as LogLine;
          this.lines.push(line);
          this.waiters = this.waiters.filter((w) => {
            if (!w.match(line)) return true;
            w.resolve(line);
            return false;
          });
        } catch {
          // not a JSON line (should not happen: tested elsewhere)
        }
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exit = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line (past or future) matching; rejects after timeoutMs. */
  waitFor(match: (l: LogLine) => boolean, timeoutMs = 30_000, what = 'log line'): Promise<LogLine> {
    const past = this.lines.find(match);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`timed out waiting for ${what}; last lines:\n${this.rawStdout.slice(-15).join('\n')}\nstderr: ${this.stderr}`));
      }, timeoutMs);
      this.waiters.push({ match, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }

  waitForMessage(msg: string | RegExp, timeoutMs?: number): Promise<LogLine> {
    const match = (l: LogLine): boolean => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg));
    return this.waitFor(match, timeoutMs, `"${String(msg)}"`);
  }

  /** Log lines after index `from` (to look only at what happened since a point). */
  since(from: number): LogLine[] {
    return this.lines.slice(from);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exit;
  }
}
