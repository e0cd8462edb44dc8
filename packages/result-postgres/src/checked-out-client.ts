import type { Pool, PoolClient } from 'pg';

/**
 * Checks a client out of `pool` for `work`, and releases it (dropping it from the pool when
 * `work` failed, since it may be in any state).
 *
 * While a client is checked out, pg emits the loss of its connection as an `error` event on
 * the client, and the pool listens only to idle clients: without a listener of ours that event
 * would be thrown and take the whole process down. The listener does nothing else, because the
 * failure also reaches `work` through the query that was running or the next one.
 */
export async function withCheckedOutClient<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  const ignore = (): void => undefined;
  client.on('error', ignore);
  let failure: Error | undefined;
  try {
    return await work(client);
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.off('error', ignore);
    client.release(failure);
  }
}
