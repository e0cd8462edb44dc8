import { rabbitmqctl } from './rabbitmq';
import { deadLetterQueueName } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';

/**
 * Runs `work` while quorum queue `queue` has the delivery-limit policy the README recommends
 * (policies cannot be set over AMQP, hence rabbitmqctl): past `limit` returned deliveries,
 * RabbitMQ dead-letters a message to `<queue>.dead` through the default exchange, at least once.
 * The policy matches this queue's name only, and is deleted afterwards.
 */
export async function withDeliveryLimit<T>(
  queue: string,
  limit: number,
  work: () => Promise<T>,
): Promise<T> {
  const name = `conveyor-test-${queue}`;
  const definition = {
    'delivery-limit': limit,
    'dead-letter-exchange': '',
    'dead-letter-routing-key': deadLetterQueueName(queue),
    'dead-letter-strategy': 'at-least-once',
    overflow: 'reject-publish',
  };
  const pattern = `^${queue.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
  await rabbitmqctl(
    'set_policy',
    name,
    pattern,
    JSON.stringify(definition),
    '--apply-to',
    'queues',
    '--priority',
    '100',
  );
  try {
    // A policy reaches its queue asynchronously.
    await waitFor(async () => {
      const out = await rabbitmqctl('list_queues', 'name', 'policy');
      return out.split('\n').some((line) => line === `${queue}\t${name}`);
    }, `policy ${name} on ${queue}`);
    return await work();
  } finally {
    await rabbitmqctl('clear_policy', name).catch(() => undefined);
  }
}
