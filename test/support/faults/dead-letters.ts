import { deadLetterQueueName, type Conveyor } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { readyCount } from '../rabbitmq';

/**
 * Sends `count` `faults.record` tasks through `producer` to `queue` while a worker of
 * `producer` that knows no task consumes it: each ends in `<queue>.dead` with FAILURE
 * (NotRegistered) stored. One at a time, so the dead letters stand in send order. Returns
 * their ids, in that order.
 */
export async function deadLetterTasks(
  producer: Conveyor,
  queue: string,
  count: number,
): Promise<string[]> {
  const blind = producer.worker({ queues: [queue], concurrency: 1, handleSignals: false });
  await blind.start();
  const ids: string[] = [];
  try {
    for (let i = 0; i < count; i += 1) ids.push((await producer.send('faults.record', [i, 0])).id);
    await waitFor(
      async () => (await readyCount(deadLetterQueueName(queue))) === count,
      `${count} dead letters`,
      20_000,
    );
  } finally {
    await blind.stop();
  }
  return ids;
}
