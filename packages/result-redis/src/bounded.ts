import { ConnectionError } from '@conveyor/core';

/** The server an operation ran against, to name it (and its last error) in a failure. */
export interface BoundedServer {
  /** The server, credentials masked. */
  target: string;
  /** The connection's last error, if it has one now. */
  lastError(): Error | undefined;
}

/**
 * Settles with `operation` or rejects with a {@link ConnectionError} once `timeoutMs` has
 * passed. ioredis keeps commands in its offline queue while it reconnects, which would make a
 * call during an outage wait for as long as the outage lasts; this puts a bound on that wait.
 * Any failure of the operation is reported as a `ConnectionError` with the original as `cause`.
 *
 * The command itself cannot be withdrawn from ioredis' queue: it may still run once the
 * connection is back. Every write this package makes is safe to apply late (see the README).
 */
export function bounded<T>(
  operation: Promise<T>,
  timeoutMs: number,
  what: string,
  server?: BoundedServer,
): Promise<T> {
  const where = server ? `redis: ${server.target}:` : 'redis:';
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      // The late settlement of the abandoned command must not become an unhandled rejection.
      operation.catch(() => undefined);
      const cause = server?.lastError();
      const why = cause ? ` (last connection error: ${cause.message})` : '';
      reject(
        new ConnectionError(`${where} ${what} did not complete within ${timeoutMs} ms${why}`, {
          cause,
        }),
      );
    }, timeoutMs);
    // The command itself (a socket, or ioredis' reconnect timer) keeps the process alive while
    // it matters; this timer alone must not hold it open after the backend was closed.
    timer.unref();
    operation.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        const reason = error instanceof Error ? error.message : String(error);
        reject(new ConnectionError(`${where} ${what} failed: ${reason}`, { cause: error }));
      },
    );
  });
}
