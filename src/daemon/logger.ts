import { pino, type Logger, type DestinationStream } from 'pino';

export interface LoggerOptions {
  level: string;
  /** Pretty, coloured lines for a person at a terminal; JSON lines for journald otherwise. */
  pretty?: boolean;
  destination?: DestinationStream;
}

/**
 * Secrets are redacted from every line by value, not by key: a password can reach a log line through an error
 * message of a library (a connection string, a failed auth echo), not only through a `password` field.
 */
export class SecretRedactor {
  #secrets: string[] = [];

  /** Replaces the set of secret values. Short values are kept too: a PIN is a secret. */
  set(secrets: Iterable<string>): void {
    this.#secrets = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  }

  /** Adds secret values (config reload): one that was a secret stays redacted for the life of the process. */
  add(secrets: Iterable<string>): void {
    this.set([...this.#secrets, ...secrets]);
  }

  redact(line: string): string {
    let out = line;
    for (const secret of this.#secrets) {
      if (out.includes(secret)) out = out.split(secret).join('[redacted]');
      const escaped = JSON.stringify(secret).slice(1, -1);
      if (escaped !== secret && out.includes(escaped)) out = out.split(escaped).join('[redacted]');
    }
    return out;
  }
}

export function createLogger(options: LoggerOptions, redactor: SecretRedactor): Logger {
  const common = {
    level: options.level,
    base: { pid: process.pid },
    redact: { paths: ['*.password', '*.passphrase', '*.keyPassphrase', 'password', 'auth.password'], censor: '[redacted]' },
    hooks: {
      streamWrite: (line: string) => redactor.redact(line),
    },
    serializers: { err: pino.stdSerializers.err },
  };
  if (options.destination) return pino(common, options.destination);
  if (options.pretty) {
    const transport = pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } });
    return pino(common, transport);
  }
  return pino(common, pino.destination({ dest: 1, sync: false }));
}
