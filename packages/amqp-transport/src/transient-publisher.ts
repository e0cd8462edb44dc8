import type { Channel } from 'amqplib';
import type { ExchangeDeclaration, TransportMessage } from '@conveyor/core/plugin';
import { closeWithin } from '@conveyor/core/plugin';
import { CLOSE_TIMEOUT_MS } from './bounded-close';
import type { AmqpTransportLogger } from './amqp-transport-options';
import { messageOf } from './broker-errors';
import type { ConnectionManager } from './connection-manager';
import { publishOptions } from './message-mapping';
import { batchWrites } from './write-batching';

/**
 * Fire-and-forget publishing of transient messages (Celery events, control replies) on a
 * channel of its own, without publisher confirms, so it never waits for the broker and never
 * takes a place in the confirmed publisher's window. When the socket's write buffer is full (the
 * broker is slow or blocking the connection) messages are dropped until it drains; while the
 * connection is down they are dropped too. The exchanges declared through it are declared again
 * on every new channel.
 * @internal
 */
export class TransientPublisher {
  private channel?: Channel;
  private opening?: Promise<Channel>;
  private draining = false;
  private closed = false;
  private readonly exchanges = new Map<string, ExchangeDeclaration>();

  constructor(
    private readonly connection: ConnectionManager,
    private readonly logger: AmqpTransportLogger,
  ) {
    connection.onLost(() => {
      this.channel = undefined;
      this.draining = false;
    });
    // Reopened as soon as a connection is back, so few messages are dropped after an outage.
    connection.onConnected(async () => {
      if (this.exchanges.size > 0) void this.open().catch(() => undefined);
    });
  }

  /** Declares an exchange (opening the channel first); redeclared on every new channel. */
  async declare(exchange: ExchangeDeclaration, timeoutMs: number): Promise<void> {
    const channel = await this.open(timeoutMs);
    await channel.assertExchange(exchange.name, exchange.type, {
      durable: exchange.durable ?? false,
      autoDelete: false,
    });
    this.exchanges.set(exchange.name, exchange);
  }

  /**
   * False when dropped: no channel now (one is being opened), the write buffer is full, or the
   * exchange was not declared through {@link declare}.
   */
  publish(exchange: string, routingKey: string, message: TransportMessage): boolean {
    const channel = this.channel;
    if (!channel) {
      if (!this.closed) void this.open().catch(() => undefined);
      return false;
    }
    // Publishing to an exchange the broker does not know would close the channel.
    if (this.draining || !this.exchanges.has(exchange)) return false;
    try {
      // One socket write for everything published in this turn (and the acks beside it): a
      // publish is two frames, each a write of its own otherwise, and on loopback a write costs
      // more CPU than encoding the events in it.
      batchWrites(channel);
      const written = channel.publish(exchange, routingKey, message.body, {
        ...publishOptions(message),
        deliveryMode: message.properties.deliveryMode ?? 1,
        mandatory: false,
      });
      if (!written) {
        this.draining = true;
        channel.once('drain', () => {
          this.draining = false;
        });
      }
      return true;
    } catch {
      // The channel closed under us (amqplib throws on a closed channel).
      this.channel = undefined;
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const channel = this.channel;
    this.channel = undefined;
    if (channel) await closeWithin(() => channel.close(), CLOSE_TIMEOUT_MS);
  }

  private open(timeoutMs?: number): Promise<Channel> {
    if (this.channel) return Promise.resolve(this.channel);
    this.opening ??= this.createChannel(timeoutMs).finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async createChannel(timeoutMs?: number): Promise<Channel> {
    const model = await this.connection.connection(timeoutMs);
    const channel = await model.createChannel();
    channel.on('error', (error: Error) =>
      this.logger.warn(`transient publishing channel closed: ${messageOf(error)}`),
    );
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
      this.draining = false;
    });
    for (const exchange of this.exchanges.values()) {
      await channel.assertExchange(exchange.name, exchange.type, {
        durable: exchange.durable ?? false,
        autoDelete: false,
      });
    }
    if (this.closed) {
      await closeWithin(() => channel.close(), CLOSE_TIMEOUT_MS);
      throw new Error('the transport is closed');
    }
    this.channel = channel;
    return channel;
  }
}
