import { ConnectionError } from '../errors';

/**
 * Settles as `operation` does, or rejects with a {@link ConnectionError} once `timeoutMs` has
 * passed. Client libraries keep commands queued while they reconnect (ioredis' offline queue,
 * pg's pool queue), which would make a call during an outage wait for as long as the outage
 * lasts; this puts a bound on that wait. A failure of the operation becomes a `ConnectionError`
 * too, with the original as `cause`. Messages read `<what> did not complete within <n> ms` and
 * `<what> failed: <reason>`, so `what` should name the package and the operation
 * (`'redis: store of task 42'`). `lastError`, when given, names the connection's last error in a
 * timeout (and makes it the cause), since a command waiting in a client's queue fails with none.
 *
 * The operation itself cannot be withdrawn: it may still run once the connection is back, so
 * use this only for writes that are safe to apply late.
 */
export function bounded<T>(
  operation: Promise<T>,
  timeoutMs: number,
  what: string,
  lastError?: () => Error | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      // The late settlement of the abandoned operation must not become an unhandled rejection.
      operation.catch(() => undefined);
      const cause = lastError?.();
      const why = cause ? ` (last connection error: ${cause.message})` : '';
      reject(
        new ConnectionError(`${what} did not complete within ${timeoutMs} ms${why}`, { cause }),
      );
    }, timeoutMs);
    // The operation itself (a socket, a reconnect timer) keeps the process alive while it
    // matters; this timer alone must not hold it open after the plugin was closed.
    timer.unref();
    operation.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        const reason = error instanceof Error ? error.message : String(error);
        reject(new ConnectionError(`${what} failed: ${reason}`, { cause: error }));
      },
    );
  });
}

/**
 * Runs a best-effort close, but never waits longer than `timeoutMs`: some clients leave a
 * close unsettled when the socket dies before the server answers (amqplib's CloseOk), and a
 * close that never returns keeps a worker from exiting during an outage. Errors are ignored.
 * Resolves `true` when the close settled in time, `false` when the wait was cut short (the
 * caller may then drop the socket).
 */
export async function closeWithin(
  close: () => Promise<unknown>,
  timeoutMs: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      close().then(
        () => true,
        () => true,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
