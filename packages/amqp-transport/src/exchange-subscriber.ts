import type { Channel, ChannelModel, Options } from 'amqplib';
import type {
  Consumer,
  ExchangeDeclaration,
  ExchangeQueueOptions,
  TransportMessage,
} from '@conveyor/core/plugin';
import { closeWithin } from '@conveyor/core/plugin';
import { CLOSE_TIMEOUT_MS } from './bounded-close';
import type { AmqpTransportLogger } from './amqp-transport-options';
import type { ConnectionManager } from './connection-manager';
import { transportMessage } from './message-mapping';

/**
 * kombu declares its mailbox exchanges (`celery.pidbox`, `reply.celery.pidbox`) non-durable;
 * ours must match, or RabbitMQ refuses one side's declaration as inequivalent.
 */
export const BROADCAST_EXCHANGE_OPTIONS = { durable: false, autoDelete: false } as const;

/** What an {@link ExchangeSubscriber} binds: an exchange (declared, or only checked when only its name is known), a key, and its queue's options. */
export interface ExchangeSubscription extends ExchangeQueueOptions {
  exchange: ExchangeDeclaration | string;
  bindingKey: string;
}

/**
 * Receives what is published to an exchange through a queue of its own: an exclusive
 * server-named one (a Celery worker's pidbox), or a named one with a message TTL and an expiry
 * (Celery's `celeryev.<id>` event queues and `<id>.reply.celery.pidbox` reply queues). Traffic
 * is transient and unacknowledged: what is sent while the connection is down is missed, and the
 * queue is declared anew after a reconnect.
 */
export class ExchangeSubscriber implements Consumer {
  private channel?: Channel;
  private cancelled = false;

  constructor(
    private readonly subscription: ExchangeSubscription,
    private readonly handler: (message: TransportMessage) => void,
    private readonly connection: ConnectionManager,
    private readonly logger: AmqpTransportLogger,
    private readonly onFinished: (subscriber: ExchangeSubscriber) => void,
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
      this.logger.warn(
        `could not resubscribe to '${this.exchangeName}': ${(error as Error).message}`,
      );
    }
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.onFinished(this);
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeWithin(() => channel.close(), CLOSE_TIMEOUT_MS);
  }

  private get exchangeName(): string {
    const { exchange } = this.subscription;
    return typeof exchange === 'string' ? exchange : exchange.name;
  }

  private async attach(model: ChannelModel): Promise<void> {
    const { exchange, bindingKey, queue: name, messageTtlMs, expiresMs } = this.subscription;
    const channel = await model.createChannel();
    channel.on('error', (error: Error) =>
      this.logger.warn(`subscription channel of '${this.exchangeName}': ${error.message}`),
    );
    if (typeof exchange === 'string') await channel.checkExchange(exchange);
    else {
      await channel.assertExchange(exchange.name, exchange.type, {
        durable: exchange.durable ?? false,
        autoDelete: false,
      });
    }
    const options: Options.AssertQueue = { exclusive: !name, autoDelete: true, durable: false };
    if (messageTtlMs !== undefined) options.messageTtl = messageTtlMs;
    if (expiresMs !== undefined) options.expires = expiresMs;
    const { queue } = await channel.assertQueue(name ?? '', options);
    await channel.bindQueue(queue, this.exchangeName, bindingKey);
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
