import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import type { RunNames } from './names';

/** Delay levels of a Conveyor delay namespace (the transport's DELAY_LEVELS). */
const DELAY_LEVELS = 32;

/**
 * Removes everything the run created: its queues and exchanges (task queues, `.dead` queues,
 * raw queues, the 32 delay levels and delivery exchange of its namespace), its Redis keys and
 * its PostgreSQL schema. Each step is independent: one failing does not skip the others.
 * Returns what went wrong, if anything.
 */
export async function cleanUp(
  names: RunNames,
  urls: { amqp: string; redis: string; database: string },
): Promise<string[]> {
  const problems: string[] = [];
  const step = async (what: string, work: () => Promise<void>): Promise<void> => {
    try {
      await work();
    } catch (error) {
      problems.push(`${what}: ${(error as Error).message}`);
    }
  };
  await step('AMQP', () => cleanAmqp(names, urls.amqp));
  await step('Redis', () => cleanRedis(names, urls.redis));
  await step('PostgreSQL', () => cleanPostgres(names, urls.database));
  return problems;
}

async function cleanAmqp(names: RunNames, url: string): Promise<void> {
  const queues = new Set(names.queues);
  const exchanges = new Set(names.exchanges);
  const ns = names.delayNamespace;
  for (let level = 0; level < DELAY_LEVELS; level += 1) {
    const name = `${ns}.level-${String(level).padStart(2, '0')}`;
    queues.add(name);
    exchanges.add(name);
  }
  exchanges.add(`${ns}.delivery`);
  const connection = await connect(url);
  try {
    // A channel per batch: deleting a missing queue or exchange is fine in RabbitMQ 3.x/4.x,
    // but a channel error would otherwise stop the rest.
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    for (const queue of queues) await channel.deleteQueue(queue);
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
    await channel.close();
  } finally {
    await connection.close();
  }
}

async function cleanRedis(names: RunNames, url: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${names.redisPrefix}*`,
        'COUNT',
        5000,
      );
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function cleanPostgres(names: RunNames, url: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${names.pgSchema}" CASCADE`);
  } finally {
    await client.end();
  }
}
