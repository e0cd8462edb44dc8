import type { ChannelModel } from 'amqplib';
import type { Writable } from 'node:stream';

/** How long a channel or connection close may wait for the broker's CloseOk. */
export const CLOSE_TIMEOUT_MS = 1_000;

/**
 * Runs an amqplib close, but never waits longer than `timeoutMs`: amqplib leaves the promise
 * unsettled when the socket dies before the broker's CloseOk, and a close that never returns
 * keeps a worker from exiting during a broker outage. Errors are ignored: closing is best effort.
 */
export async function closeWithin(
  close: () => Promise<unknown>,
  timeoutMs = CLOSE_TIMEOUT_MS,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
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

/** Closes a connection within the bound, then drops its socket if the broker never answered. */
export async function closeConnection(model: ChannelModel): Promise<void> {
  if (await closeWithin(() => model.close())) return;
  (model.connection as unknown as { stream?: Writable }).stream?.destroy();
}
