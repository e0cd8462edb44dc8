import { ConnectionError } from '@conveyor/core';

/**
 * Turns pg failures into Conveyor's catalogue and keeps secrets out of every message. A caller
 * of a result backend handles "the store did not do it" one way (retry, nack, report), whatever
 * pg said, so every database failure becomes a {@link ConnectionError} with pg's error as cause.
 */
export class ErrorTranslator {
  private readonly secrets: string[];

  constructor(
    /** Where the store is, without credentials, e.g. `127.0.0.1:5432/test`. */
    readonly target: string,
    secrets: ReadonlyArray<string | undefined>,
  ) {
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = secrets
      .filter((s): s is string => typeof s === 'string' && s.length > 0)
      .flatMap((s) => [s, encodeURIComponent(s)])
      .sort((a, b) => b.length - a.length);
  }

  /** A {@link ConnectionError} for a failed operation. */
  translate(operation: string, error: unknown): ConnectionError {
    if (error instanceof ConnectionError) return error;
    return new ConnectionError(
      `PostgreSQL result backend (${this.target}): ${operation} failed: ${this.redact(describe(error))}`,
      { cause: error },
    );
  }

  /** Removes every known secret from a text. */
  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }
}

/**
 * True when the connection died under a query (killed backend, cut socket), as opposed to the
 * database refusing or not answering. Such a query is worth one retry on a fresh connection.
 */
export function isConnectionLost(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  // 57P01 admin_shutdown (pg_terminate_backend), 57P02 crash_shutdown, 08xxx connection exceptions.
  if (code === '57P01' || code === '57P02' || (typeof code === 'string' && code.startsWith('08'))) {
    return true;
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') return true;
  if (typeof message !== 'string') return false;
  // Not a connect timeout: retrying that would only double the time the caller waits.
  if (/connection timeout|timeout exceeded/i.test(message)) return false;
  return /Connection terminated|Client has encountered a connection error/i.test(message);
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(describe).join('; ');
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const text = error.message || error.name;
    return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
  }
  return String(error);
}

/** `host:port/database` of a connection string, never its user or password. */
export function describeTarget(
  connectionString: string | undefined,
  fallback: {
    host?: string;
    port?: number;
    database?: string;
  },
): string {
  if (connectionString) {
    try {
      const url = new URL(connectionString);
      return `${url.hostname || 'localhost'}${url.port ? `:${url.port}` : ''}${url.pathname || ''}`;
    } catch {
      return 'configured database';
    }
  }
  return `${fallback.host ?? 'localhost'}:${fallback.port ?? 5432}/${fallback.database ?? ''}`;
}

/** The password in a connection string, so it can be redacted from messages. */
export function passwordOf(connectionString: string | undefined): string | undefined {
  if (!connectionString) return undefined;
  try {
    const password = new URL(connectionString).password;
    return password ? decodeURIComponent(password) : undefined;
  } catch {
    return undefined;
  }
}
