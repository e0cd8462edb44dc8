import {
  ConnectionError,
  Redactor,
  SerializationError,
  stringifyCeleryJson,
} from '@conveyor/core/plugin';
import type { ClientConfig } from 'pg';

/**
 * Turns pg failures into Conveyor's catalogue and keeps secrets out of every message. A caller
 * of a result backend handles "the store did not do it" one way (retry, nack, report), whatever
 * pg said, so every database failure becomes a {@link ConnectionError} with pg's error as cause.
 */
export class ErrorTranslator {
  constructor(
    /** Where the store is, without credentials, e.g. `127.0.0.1:5432/test`. */
    readonly target: string,
    /** Knows the credentials of the connection settings. */
    private readonly redactor: Redactor,
  ) {}

  /** A translator for connections made from `url` or with `config`, hiding their credentials. */
  static forConnection(url: string | undefined, config: ClientConfig): ErrorTranslator {
    const target = describeTarget(url ?? config.connectionString, {
      host: config.host,
      port: config.port,
      database: config.database,
    });
    const password = typeof config.password === 'string' ? config.password : undefined;
    return new ErrorTranslator(target, new Redactor([url, config.connectionString], [password]));
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
    return this.redactor.redact(text);
  }

  /**
   * A failure of a write whose meta jsonb refused as a {@link SerializationError} about
   * `subject`; undefined for any other failure.
   */
  unstorable(subject: string, error: unknown): SerializationError | undefined {
    if (!isUnstorableJson(error)) return undefined;
    return new SerializationError(subject, this.redact(String((error as Error).message)));
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

/** `meta` as JSON text, or a {@link SerializationError} about `subject`. */
export function serialize(meta: object, subject: string): string {
  try {
    return stringifyCeleryJson(meta);
  } catch (error) {
    throw new SerializationError(subject, error instanceof Error ? error.message : String(error));
  }
}

/**
 * Why jsonb would refuse this JSON text, if it would: `JSON.stringify` writes U+0000 and lone
 * surrogates as `\u` escapes (an odd run of backslashes before the `u`), which jsonb rejects.
 * Checked before sending, so that such a row never fails the batch it would share.
 */
export function unstorableJson(document: string): string | undefined {
  if (!document.includes('\\u')) return undefined;
  const match = /(?<!\\)(?:\\\\)*\\u(0000|d[89a-f][0-9a-f]{2})/i.exec(document);
  if (!match) return undefined;
  return match[1] === '0000'
    ? 'jsonb cannot hold U+0000 in a string'
    : `jsonb cannot hold a lone surrogate (\\u${match[1]!.toLowerCase()}) in a string`;
}

/**
 * A failure caused by the statement's data rather than by the connection: data exceptions
 * (22: values jsonb refuses, payload too long), integrity (23), cardinality (21), serialization
 * and deadlock (40), program limits (54). A batch failing so is retried row by row. Looks
 * through a {@link ConnectionError} to pg's error, its cause.
 */
export function isDataError(error: unknown): boolean {
  const cause = error instanceof ConnectionError ? error.cause : error;
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(21|22|23|40|54)/.test(code) && code.length === 5;
}

/** PostgreSQL's jsonb refuses some JSON that JavaScript writes: `\u0000`, lone surrogates. */
function isUnstorableJson(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const message = String((error as { message?: unknown } | null)?.message ?? '');
  return code === '22P05' || (code === '22P02' && /json|unicode/i.test(message));
}
