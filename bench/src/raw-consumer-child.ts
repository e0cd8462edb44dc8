/**
 * The ceiling's consumer, in its own process: raw amqplib, one connection, prefetch as the
 * Conveyor worker's. For every message it publishes a reply to the message's `replyTo` queue
 * (with its `correlationId`) when told to reply, then acks it. Told to store results, it stores a
 * Celery result meta in Redis instead and acks once Redis answered (see `RawConsumerChildConfig`).
 */
import { connect, type ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import { AckTarget, childConfig, fail, send, serveParent } from './child-support';
import type { RawConsumerChildConfig } from './ipc';

/** A day, as Celery's `result_expires`. */
const RESULT_EXPIRES_MS = 86_400_000;

async function main(): Promise<void> {
  const config = childConfig<RawConsumerChildConfig>('raw-consumer');
  const connection = await connect(config.amqpUrl, { noDelay: config.noDelay });
  const channel = await connection.createChannel();
  await channel.prefetch(config.prefetch);
  const results = config.results;
  // Auto-pipelining sends the commands of one turn in one write, as Conveyor's backend does.
  const redis = results ? new Redis(results.redisUrl, { enableAutoPipelining: true }) : undefined;
  let acked = 0;
  const target = new AckTarget(() => acked);
  let consumerTag: string | undefined;
  const acknowledge = (msg: ConsumeMessage): void => {
    channel.ack(msg);
    acked += 1;
    target.check();
  };
  serveParent({
    start: async () => {
      const consumer = await channel.consume(config.queue, (msg) => {
        if (!msg) return;
        const { replyTo, correlationId } = msg.properties as {
          replyTo?: string;
          correlationId?: string;
        };
        if (redis && results && correlationId !== undefined) {
          const key = `${results.keyPrefix}${correlationId}`;
          const meta = storedMeta(correlationId, msg.content);
          Promise.all([
            redis.set(key, meta, 'PX', RESULT_EXPIRES_MS),
            redis.publish(key, meta),
          ]).then(() => acknowledge(msg), fail);
          return;
        }
        if (config.reply && replyTo) channel.publish('', replyTo, msg.content, { correlationId });
        acknowledge(msg);
      });
      consumerTag = consumer.consumerTag;
      send({ type: 'started' });
    },
    count: () => acked,
    notifyAt: (total) => target.set(total),
    stop: async () => {
      if (consumerTag) await channel.cancel(consumerTag);
      await channel.close();
      await connection.close();
      await redis?.quit();
    },
  });
}

/** Celery's result meta of a task that returned its first argument (the body is Celery's v2 body). */
function storedMeta(taskId: string, body: Buffer): string {
  const [args] = JSON.parse(body.toString('utf8')) as [unknown[]];
  return JSON.stringify({
    status: 'SUCCESS',
    result: args[0] ?? null,
    traceback: null,
    children: [],
    date_done: new Date().toISOString(),
    task_id: taskId,
  });
}

main().catch(fail);
