import { once } from 'node:events';
import {
  connect,
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type Options,
} from 'amqplib';

/**
 * Writes one persistent, mandatory message on a confirm channel, the way every raw producer of
 * the bench does. `confirmed` settles on the broker's confirm; `written` is amqplib's answer
 * (false: its buffer is full, wait for `drain` before writing more).
 */
export function writePersistent(
  channel: ConfirmChannel,
  queue: string,
  body: Buffer,
  options: Options.Publish = {},
): { confirmed: Promise<void>; written: boolean } {
  let written = true;
  const confirmed = new Promise<void>((resolve, reject) => {
    written = channel.publish(
      '',
      queue,
      body,
      { ...options, persistent: true, mandatory: true },
      (error) => (error ? reject(new Error(`publish not confirmed: ${String(error)}`)) : resolve()),
    );
  });
  return { confirmed, written };
}

/**
 * Publishes `n` messages (the i-th from `message(i)`) without waiting between them, honouring
 * `drain`; resolves once the broker has confirmed all of them.
 */
export async function publishBurst(
  channel: ConfirmChannel,
  queue: string,
  n: number,
  message: (i: number) => { body: Buffer; options: Options.Publish },
): Promise<void> {
  const confirms: Array<Promise<void>> = [];
  for (let i = 0; i < n; i += 1) {
    const { body, options } = message(i);
    const { confirmed, written } = writePersistent(channel, queue, body, options);
    confirms.push(confirmed);
    if (!written) await once(channel, 'drain');
  }
  await Promise.all(confirms);
}

/**
 * The producer side of the raw amqplib ceiling: a publisher connection with a confirm channel
 * and a consumer connection for the replies (Conveyor too keeps publishing and consuming on
 * separate connections). Requests are persistent messages to a durable queue, published through
 * the default exchange with `mandatory`, as Conveyor publishes tasks.
 */
export class RawRequester {
  private readonly waiting = new Map<string, () => void>();
  private onAnyReply?: () => void;
  replies = 0;

  private constructor(
    private readonly publisherConnection: ChannelModel,
    private readonly publisher: ConfirmChannel,
    private readonly consumerConnection: ChannelModel,
    private readonly consumer: Channel,
    private readonly requestQueue: string,
    private readonly replyQueue: string,
  ) {}

  /**
   * Headers sent with every request, e.g. those of a real Conveyor task message (to tell the
   * cost of Celery's protocol from the cost of Conveyor's code). Only `id` changes per message.
   */
  headers?: Record<string, unknown>;

  /** Declares both queues (durable request queue, reply queue) and starts taking replies. */
  static async open(
    url: string,
    noDelay: boolean,
    requestQueue: string,
    replyQueue: string,
  ): Promise<RawRequester> {
    const publisherConnection = await connect(url, { noDelay });
    const consumerConnection = await connect(url, { noDelay });
    const publisher = await publisherConnection.createConfirmChannel();
    const consumer = await consumerConnection.createChannel();
    await publisher.assertQueue(requestQueue, { durable: true });
    await consumer.assertQueue(replyQueue, { durable: false });
    const requester = new RawRequester(
      publisherConnection,
      publisher,
      consumerConnection,
      consumer,
      requestQueue,
      replyQueue,
    );
    await consumer.consume(
      replyQueue,
      (msg) => {
        if (!msg) return;
        requester.replies += 1;
        const id = (msg.properties as { correlationId?: string }).correlationId;
        if (id !== undefined) {
          const resolve = requester.waiting.get(id);
          if (resolve) {
            requester.waiting.delete(id);
            resolve();
          }
        }
        requester.onAnyReply?.();
      },
      { noAck: true },
    );
    return requester;
  }

  /** The body and properties of request `id`. */
  private request(id: string): { body: Buffer; options: Options.Publish } {
    return {
      body: Buffer.from(JSON.stringify([[Number(id)], {}, {}])),
      options: {
        correlationId: id,
        replyTo: this.replyQueue,
        contentType: 'application/json',
        headers: this.headers ? { ...this.headers, id } : undefined,
      },
    };
  }

  /** Publishes one request; resolves on its confirm. */
  async publish(id: string): Promise<void> {
    const { body, options } = this.request(id);
    const { confirmed, written } = writePersistent(
      this.publisher,
      this.requestQueue,
      body,
      options,
    );
    if (!written) await once(this.publisher, 'drain');
    await confirmed;
  }

  /** One request/reply: publish (confirmed), then wait for the reply. */
  async roundTrip(id: string): Promise<void> {
    const reply = new Promise<void>((resolve) => this.waiting.set(id, resolve));
    await this.publish(id);
    await reply;
  }

  /** Publishes `n` requests without waiting between them; resolves when all are confirmed and replied. */
  async burst(n: number): Promise<void> {
    const target = this.replies + n;
    const allReplied = new Promise<void>((resolve) => {
      this.onAnyReply = () => {
        if (this.replies >= target) resolve();
      };
    });
    await publishBurst(this.publisher, this.requestQueue, n, (i) => this.request(String(i)));
    await allReplied;
    this.onAnyReply = undefined;
  }

  async close(): Promise<void> {
    await this.consumer.close().catch(() => undefined);
    await this.publisher.close().catch(() => undefined);
    await this.consumerConnection.close().catch(() => undefined);
    await this.publisherConnection.close().catch(() => undefined);
  }
}

/**
 * The raw comparison of the memory-backend scenario, in one process: publish `n` persistent
 * messages on a confirm channel, consume them on another connection with `prefetch`, ack each.
 * Returns the elapsed milliseconds from the first publish to the last ack (and all confirms).
 */
export async function rawPublishConsumeAck(
  url: string,
  queue: string,
  n: number,
  prefetch: number,
): Promise<number> {
  const publisherConnection = await connect(url, { noDelay: true });
  const consumerConnection = await connect(url, { noDelay: true });
  try {
    const publisher = await publisherConnection.createConfirmChannel();
    const consumer = await consumerConnection.createChannel();
    await publisher.assertQueue(queue, { durable: true });
    await consumer.prefetch(prefetch);
    let acked = 0;
    let done!: () => void;
    const allAcked = new Promise<void>((resolve) => (done = resolve));
    await consumer.consume(queue, (msg) => {
      if (!msg) return;
      consumer.ack(msg);
      acked += 1;
      if (acked === n) done();
    });
    const started = performance.now();
    await publishBurst(publisher, queue, n, (i) => ({
      body: Buffer.from(JSON.stringify([[i], {}, {}])),
      options: { contentType: 'application/json' },
    }));
    await allAcked;
    return performance.now() - started;
  } finally {
    await consumerConnection.close().catch(() => undefined);
    await publisherConnection.close().catch(() => undefined);
  }
}
