import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type Channel, type GetMessage } from 'amqplib';
import { deadLetterQueueName } from '@conveyor/core/plugin';
import { DelayTopology } from '../../packages/amqp-transport/src/delayed-delivery';
import { DELAY_LEVELS } from '../../packages/amqp-transport/src/defaults';
import { AMQP_URL } from './services';

/**
 * RabbitMQ as the tests see it from outside the transport under test: raw channels, live queue
 * counts, clean-up of what a test declared.
 */

/** A unique delay namespace for one test file. */
export function delayNamespace(): string {
  return `amqp-test-delay-${randomUUID()}`;
}

/** Runs `work` on a raw amqplib channel of its own connection, outside the transport under test. */
export async function withRawChannel<T>(work: (channel: Channel) => Promise<T>): Promise<T> {
  const connection = await connect(AMQP_URL);
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return await work(channel);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Every message ready on `queue`, taken off it (no ack needed), in queue order. */
export async function takeAll(queue: string): Promise<GetMessage[]> {
  return withRawChannel(async (channel) => {
    const messages: GetMessage[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (message === false) return messages;
      messages.push(message);
    }
  });
}

/** Runs each operation on a fresh channel, so one refusal does not stop the rest. */
async function eachOnFreshChannel(
  operations: Array<(channel: Channel) => Promise<unknown>>,
): Promise<void> {
  const connection = await connect(AMQP_URL);
  connection.on('error', () => undefined);
  try {
    for (const operation of operations) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await operation(channel).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Deletes task queues and everything the transport declared for them. */
export async function removeQueues(names: string[]): Promise<void> {
  await eachOnFreshChannel(
    names.flatMap((name) => [
      (ch: Channel) => ch.deleteQueue(name),
      (ch: Channel) => ch.deleteQueue(deadLetterQueueName(name)),
      (ch: Channel) => ch.deleteExchange(name),
    ]),
  );
}

/** Deletes the delay levels of namespace `namespace`. */
export async function removeDelayNamespace(namespace: string): Promise<void> {
  const delay = new DelayTopology(namespace);
  const operations: Array<(channel: Channel) => Promise<unknown>> = [];
  for (let level = 0; level < DELAY_LEVELS; level += 1) {
    operations.push((ch) => ch.deleteQueue(delay.levelName(level)));
    operations.push((ch) => ch.deleteExchange(delay.levelName(level)));
  }
  operations.push((ch) => ch.deleteExchange(delay.deliveryExchange));
  await eachOnFreshChannel(operations);
}

/** Messages ready in `queue`, as the broker counts them. */
export async function readyCount(queue: string): Promise<number> {
  return withRawChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);
}

/** Unacknowledged messages of `queue`, live from the broker. */
export async function unacked(queue: string): Promise<number> {
  const line = (await rabbitmqctl('list_queues', 'name', 'messages_unacknowledged'))
    .split('\n')
    .find((l) => l.startsWith(`${queue}\t`));
  return Number(line?.split('\t')[1] ?? NaN);
}

/** One queue's counts, as `rabbitmqctl list_queues` gives them. */
export interface ListedQueue {
  ready: number;
  unacked: number;
  consumers: number;
}

/** Every queue of the default vhost with its counts, live, from `rabbitmqctl list_queues`. */
export async function listQueues(): Promise<Map<string, ListedQueue>> {
  const out = await rabbitmqctl(
    'list_queues',
    'name',
    'messages_ready',
    'messages_unacknowledged',
    'consumers',
  );
  const rows = new Map<string, ListedQueue>();
  for (const line of out.split('\n')) {
    const [name, ready, unacked, consumers] = line.split('\t');
    if (name && ready !== undefined) {
      rows.set(name, {
        ready: Number(ready),
        unacked: Number(unacked),
        consumers: Number(consumers),
      });
    }
  }
  return rows;
}

/** Messages waiting in the delay levels of `namespace`, from {@link listQueues} rows. */
export function delayedIn(rows: Map<string, ListedQueue>, namespace: string): number {
  let total = 0;
  for (const [name, { ready }] of rows) if (name.startsWith(`${namespace}.level-`)) total += ready;
  return total;
}

/** Runs rabbitmqctl (live broker state, unlike the management API's sampled stats). */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('rabbitmqctl', ['-q', ...args], { timeout: 20_000 });
  return stdout;
}

/** A RabbitMQ virtual host of one test file, with its URL; see {@link createVhost}. */
export interface TestVhost {
  name: string;
  /** `AMQP_URL` pointed at this vhost. */
  url: string;
  /** Deletes the vhost and everything in it. */
  remove(): Promise<void>;
}

/**
 * Creates a vhost (guest may do anything in it). For tests that use global names such as
 * `celeryev` and `celery.pidbox`, where a broadcast or a count of workers must not reach other
 * test files' workers.
 */
export async function createVhost(label: string): Promise<TestVhost> {
  const name = `conveyor-test-${label}-${randomUUID()}`;
  await rabbitmqctl('add_vhost', name);
  await rabbitmqctl('set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  const url = new URL(AMQP_URL);
  url.pathname = `/${encodeURIComponent(name)}`;
  return {
    name,
    url: url.toString(),
    remove: async () => {
      await rabbitmqctl('delete_vhost', name);
    },
  };
}
