import { once } from 'node:events';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Redis } from 'ioredis';
import { writePersistent } from './raw-amqp';

/** Channels per SUBSCRIBE / UNSUBSCRIBE command, and tasks published per subscribed batch. */
const BATCH = 500;

/**
 * The producer side of a Redis-backed task done with raw amqplib and ioredis: each task is a
 * persistent message with Celery's headers on a confirm channel; its result arrives on the Redis
 * channel named after its key, which the producer subscribes to before publishing the task (so
 * no result can come first and nothing needs reading back) and unsubscribes from once the result
 * came, a batch of channels per command.
 */
export class RawRedisRequester {
  private readonly pending = new Set<string>();
  private toUnsubscribe: string[] = [];
  private unsubscribeScheduled = false;
  private onResult?: () => void;
  private counter = 0;
  results = 0;

  private constructor(
    private readonly connection: ChannelModel,
    private readonly publisher: ConfirmChannel,
    private readonly subscriber: Redis,
    private readonly queue: string,
    private readonly keyPrefix: string,
  ) {}

  /** Declares the durable task queue and opens the subscriber connection. */
  static async open(
    amqpUrl: string,
    redisUrl: string,
    queue: string,
    keyPrefix: string,
  ): Promise<RawRedisRequester> {
    const connection = await connect(amqpUrl, { noDelay: true });
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue(queue, { durable: true });
    const subscriber = new Redis(redisUrl);
    const requester = new RawRedisRequester(connection, publisher, subscriber, queue, keyPrefix);
    subscriber.on('message', (channel: string) => requester.received(channel));
    return requester;
  }

  /**
   * Sends `n` tasks as fast as subscriptions and `drain` allow, each with `headers` (only `id`
   * changes); resolves once all are confirmed and all their results have arrived.
   */
  async burst(n: number, headers: Record<string, unknown>): Promise<void> {
    const target = this.results + n;
    const allArrived = new Promise<void>((resolve) => {
      this.onResult = () => {
        if (this.results >= target) resolve();
      };
    });
    const confirms: Array<Promise<void>> = [];
    for (let start = 0; start < n; start += BATCH) {
      const numbers: number[] = [];
      for (let i = start; i < Math.min(n, start + BATCH); i += 1) numbers.push(++this.counter);
      const keys = numbers.map((k) => `${this.keyPrefix}raw-${k}`);
      for (const key of keys) this.pending.add(key);
      await this.subscriber.subscribe(...keys);
      for (const k of numbers) {
        const id = `raw-${k}`;
        const { confirmed, written } = writePersistent(
          this.publisher,
          this.queue,
          Buffer.from(JSON.stringify([[k], {}, {}])),
          {
            correlationId: id,
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            headers: { ...headers, id, root_id: id },
          },
        );
        confirms.push(confirmed);
        if (!written) await once(this.publisher, 'drain');
      }
    }
    await Promise.all(confirms);
    await allArrived;
    this.onResult = undefined;
  }

  async close(): Promise<void> {
    await this.publisher.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
    this.subscriber.disconnect();
  }

  private received(channel: string): void {
    if (!this.pending.delete(channel)) return;
    this.results += 1;
    this.toUnsubscribe.push(channel);
    if (!this.unsubscribeScheduled) {
      this.unsubscribeScheduled = true;
      setImmediate(() => this.unsubscribe());
    }
    this.onResult?.();
  }

  private unsubscribe(): void {
    this.unsubscribeScheduled = false;
    const channels = this.toUnsubscribe;
    this.toUnsubscribe = [];
    for (let i = 0; i < channels.length; i += BATCH) {
      this.subscriber.unsubscribe(...channels.slice(i, i + BATCH)).catch(() => undefined);
    }
  }
}
