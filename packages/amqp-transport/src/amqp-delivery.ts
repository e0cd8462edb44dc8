import type { Channel, Message } from 'amqplib';
import {
  ConnectionError,
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTERED_AT_HEADER,
  type Delivery,
  type TransportMessage,
} from '@conveyor/core/plugin';
import { batchWrites } from './write-batching';

/** A consumer channel, as its deliveries see it. Delivery tags only mean something on it. */
export interface DeliveryChannel {
  readonly channel: Channel;
  /** True once the channel is gone: its deliveries are back with the broker. */
  readonly closed: boolean;
}

/** Publishes a dead-letter copy to `<queue>.dead` and resolves on the broker's confirm. */
export type DeadLetterPublisher = (message: TransportMessage, queue: string) => Promise<void>;

/**
 * A message handed to a consumer, or taken by `fetch()`. Settling writes basic.ack / basic.nack on the channel it came
 * from; if that channel has died the broker has already put the message back, so settling
 * rejects with `ConnectionError` instead of acking a delivery tag that now means nothing.
 * @internal
 */
export class AmqpDelivery implements Delivery {
  readonly message: TransportMessage;
  readonly redelivered: boolean;
  private state: 'open' | 'settling' | 'settled' = 'open';

  constructor(
    private readonly raw: Message,
    private readonly source: DeliveryChannel,
    readonly queue: string,
    message: TransportMessage,
    private readonly publishDeadLetter: DeadLetterPublisher,
    private readonly onSettled: () => void,
  ) {
    this.message = message;
    this.redelivered = raw.fields.redelivered;
  }

  async ack(): Promise<void> {
    this.begin('ack');
    this.finish('ack', (channel) => channel.ack(this.raw));
  }

  async requeue(): Promise<void> {
    this.begin('requeue');
    this.finish('requeue', (channel) => channel.nack(this.raw, false, true));
  }

  /**
   * Publishes the copy first and acks the original only after the broker confirmed the copy:
   * a crash in between leaves the message in both places (a duplicate in the dead-letter queue),
   * never in neither.
   */
  async deadLetter(reason: string, headers: Record<string, unknown> = {}): Promise<void> {
    this.begin('dead-letter');
    const copy: TransportMessage = {
      headers: {
        ...this.message.headers,
        ...headers,
        [DEAD_LETTER_REASON_HEADER]: reason,
        [DEAD_LETTERED_AT_HEADER]: Date.now(),
      },
      properties: { ...this.message.properties },
      body: this.message.body,
    };
    try {
      await this.publishDeadLetter(copy, this.queue);
    } catch (error) {
      this.state = 'open';
      throw error;
    }
    this.finish('dead-letter', (channel) => channel.ack(this.raw));
  }

  private begin(what: string): void {
    if (this.state !== 'open') {
      throw new Error(
        `cannot ${what} a delivery from queue '${this.queue}': it was already settled`,
      );
    }
    this.checkChannel(what);
    this.state = 'settling';
  }

  private finish(what: string, settle: (channel: Channel) => void): void {
    try {
      this.checkChannel(what);
      batchWrites(this.source.channel);
      settle(this.source.channel);
    } catch (error) {
      this.state = 'open';
      throw error instanceof ConnectionError ? error : this.channelGone(what, error);
    }
    this.state = 'settled';
    this.onSettled();
  }

  private checkChannel(what: string): void {
    if (this.source.closed) throw this.channelGone(what);
  }

  private channelGone(what: string, cause?: unknown): ConnectionError {
    return new ConnectionError(
      `cannot ${what} a delivery from queue '${this.queue}': its channel closed, so the broker ` +
        'has taken the message back and will deliver it again',
      { cause },
    );
  }
}
