import type { Channel, ChannelModel } from 'amqplib';
import {
  ConnectionError,
  ConveyorError,
  UnroutableError,
  type FetchedMessage,
} from '@conveyor/core/plugin';
import { AmqpDelivery, type DeadLetterPublisher, type DeliveryChannel } from './amqp-delivery';
import { isRefusal, messageOf, replyCode } from './broker-errors';
import type { ConnectionManager } from './connection-manager';
import { transportMessage } from './message-mapping';

/** The channel fetched messages are held on. */
class ReaderChannel implements DeliveryChannel {
  closed = false;
  constructor(readonly channel: Channel) {}
}

/** What a reader needs from its transport. */
export interface QueueReaderContext {
  connection: ConnectionManager;
  publishDeadLetter: DeadLetterPublisher;
  /** How long a fetch may wait for a connection and channel. */
  timeoutMs: number;
}

/**
 * Takes messages from queues one at a time with basic.get (no consumer, manual acks), on one
 * channel of the consumer connection. The messages stay unacknowledged on that channel until the
 * caller settles them: RabbitMQ delivers them to nobody else meanwhile, and takes them all back
 * if the channel or connection closes, so a reader that dies loses nothing.
 * @internal
 */
export class QueueReader {
  private current?: ReaderChannel;
  private opening?: Promise<ReaderChannel>;

  constructor(private readonly context: QueueReaderContext) {}

  async fetch(queue: string): Promise<FetchedMessage | undefined> {
    const deadline = Date.now() + this.context.timeoutMs;
    for (;;) {
      const source = await this.channel(deadline);
      try {
        const raw = await source.channel.get(queue, { noAck: false });
        if (raw === false) return undefined;
        const delivery = new AmqpDelivery(
          raw,
          source,
          queue,
          transportMessage(raw, false),
          this.context.publishDeadLetter,
          () => undefined,
        );
        return Object.assign(delivery, { remaining: raw.fields.messageCount ?? 0 });
      } catch (error) {
        if (replyCode(error) === 404) throw new UnroutableError('', queue);
        if (error instanceof ConveyorError || isRefusal(error)) throw error;
        // The channel or connection died under the get: whatever it took is back in the queue.
        if (Date.now() >= deadline) {
          throw new ConnectionError(`cannot read queue '${queue}': ${messageOf(error)}`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Closes the channel; RabbitMQ puts back every message still held. */
  async close(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    if (current && !current.closed) await current.channel.close().catch(() => undefined);
  }

  private async channel(deadline: number): Promise<ReaderChannel> {
    if (this.current && !this.current.closed) return this.current;
    this.opening ??= this.open(deadline).finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(deadline: number): Promise<ReaderChannel> {
    for (;;) {
      const model: ChannelModel = await this.context.connection.connection(
        Math.max(1, deadline - Date.now()),
      );
      try {
        const reader = new ReaderChannel(await model.createChannel());
        reader.channel.on('error', () => undefined);
        reader.channel.on('close', () => {
          reader.closed = true;
          if (this.current === reader) this.current = undefined;
        });
        this.current = reader;
        return reader;
      } catch (error) {
        if (Date.now() >= deadline) {
          throw new ConnectionError(`cannot open a channel to read: ${messageOf(error)}`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}
