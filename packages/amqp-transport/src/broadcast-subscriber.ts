import type { Channel, ChannelModel } from 'amqplib';
import type { Consumer, TransportMessage } from '@conveyor/core/plugin';
import { closeWithin } from '@conveyor/core/plugin';
import { CLOSE_TIMEOUT_MS } from './bounded-close';
import type { AmqpTransportLogger } from './amqp-transport-options';
import type { ConnectionManager } from './connection-manager';
import { transportMessage } from './message-mapping';

/**
 * kombu declares its mailbox exchanges (`celery.pidbox`) non-durable; ours must match, or
 * RabbitMQ refuses one side's declaration as inequivalent.
 */
export const BROADCAST_EXCHANGE_OPTIONS = { durable: false, autoDelete: false } as const;

/**
 * Receives what is broadcast on a fanout exchange, through an exclusive server-named queue of
 * its own, as a Celery worker's pidbox queue does. Broadcasts are transient: what is sent while
 * the connection is down is missed, and the queue is declared anew after a reconnect.
 */
export class BroadcastSubscriber implements Consumer {
  private channel?: Channel;
  private cancelled = false;

  constructor(
    private readonly exchange: string,
    private readonly handler: (message: TransportMessage) => void,
    private readonly connection: ConnectionManager,
    private readonly logger: AmqpTransportLogger,
    private readonly onFinished: (subscriber: BroadcastSubscriber) => void,
  ) {}

  async start(timeoutMs: number): Promise<void> {
    await this.attach(await this.connection.connection(timeoutMs));
  }

  /** Subscribes again on a new connection. */
  async resume(model: ChannelModel): Promise<void> {
    if (this.cancelled) return;
    try {
      await this.attach(model);
    } catch (error) {
      this.logger.warn(`could not resubscribe to '${this.exchange}': ${(error as Error).message}`);
    }
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.onFinished(this);
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeWithin(() => channel.close(), CLOSE_TIMEOUT_MS);
  }

  private async attach(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    channel.on('error', (error: Error) =>
      this.logger.warn(`broadcast channel of '${this.exchange}': ${error.message}`),
    );
    await channel.assertExchange(this.exchange, 'fanout', BROADCAST_EXCHANGE_OPTIONS);
    const { queue } = await channel.assertQueue('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    await channel.bindQueue(queue, this.exchange, '');
    await channel.consume(
      queue,
      (message) => {
        if (message) this.handler(transportMessage(message, false));
      },
      { noAck: true },
    );
    this.channel = channel;
  }
}
