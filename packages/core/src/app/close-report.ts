import { ConnectionError } from '../errors';

/** A part of the app `close()` could not close cleanly, and why. */
export interface UnclosedPart {
  /** `broker`, `result backend`, or `worker <hostname>` (a worker whose stop failed). */
  readonly part: string;
  /** What its close threw, or a ConnectionError saying it did not finish in time. */
  readonly error: Error;
}

/** What `app.close()` did: the parts it could not close cleanly (none when all went well). */
export interface CloseReport {
  /** Parts whose close failed or did not finish within the bound; their resources were let go. */
  readonly unclosed: readonly UnclosedPart[];
}

/**
 * Closes the parts side by side, each within `timeoutMs`, and reports the ones that failed or
 * ran out of time. Never rejects. The timer is ref'd on purpose: a script awaiting close() must
 * see it settle, not exit with it pending once its sockets are gone.
 */
export async function closeParts(
  parts: ReadonlyArray<readonly [string, () => Promise<void>]>,
  timeoutMs: number,
): Promise<CloseReport> {
  const outcomes = await Promise.all(
    parts.map(async ([part, close]): Promise<UnclosedPart | undefined> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<Error>((resolve) => {
        timer = setTimeout(
          () =>
            resolve(new ConnectionError(`${part}: close did not finish within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        const error = await Promise.race([
          close().then(
            () => undefined,
            (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
          ),
          late,
        ]);
        return error ? { part, error } : undefined;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { unclosed: outcomes.filter((o): o is UnclosedPart => o !== undefined) };
}
