import type { Logger } from 'pino';

/** Where a CLI command writes. Tests pass buffers; the real CLI passes process.stdout/stderr. */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  log: Logger;
}

/**
 * A `lineguard <command>` subcommand. Connectors and the runtime contribute commands (pki, browse, model) without
 * importing the daemon; the CLI lists them in `--help`.
 */
export interface CliCommand {
  /** e.g. `pki`, `browse`, `model`. */
  name: string;
  /** One line for `lineguard --help`. */
  summary: string;
  /** Full text for `lineguard <command> --help`. */
  usage: string;
  /** Returns the process exit code (0 ok, 64 usage error, 69 unavailable, 78 config error...). */
  run(argv: string[], io: CliIo): Promise<number>;
}

/** sysexits.h codes the CLI uses. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 64, DATAERR: 65, NOINPUT: 66, UNAVAILABLE: 69, SOFTWARE: 70, CONFIG: 78 } as const;
