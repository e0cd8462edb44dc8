import { closeWithin } from '@conveyor/core/plugin';
import { CLOSE_TIMEOUT_MS } from './bounded-close';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import {
  ConnectionError,
  OptionChecker,
  PREFETCH_RULE,
  UnroutableError,
  type Consumer,
  type DeliveryHandler,
  type NumberRule,
} from '@conveyor/core/plugin';
import type { AmqpTransportLogger } from './amqp-transport-options';
import { AmqpDelivery, type DeadLetterPublisher, type DeliveryChannel } from './amqp-delivery';
import { isRefusal, messageOf, replyCode, serverText } from './broker-errors';
import type { ConnectionManager } from './connection-manager';
import { transportMessage } from './message-mapping';
import { reconnectDelay, type ReconnectSettings } from './reconnect-backoff';

/** What a consumer needs from its transport. */
export interface ConsumerContext {
  connection: ConnectionManager;
  publishDeadLetter: DeadLetterPublisher;
  /** True for an exchange of the delay levels: messages from there were delayed. */
  isDelayExchange(name: string): boolean;
  reconnect: ReconnectSettings;
  logger: AmqpTransportLogger;
  /** Told when a cancelled consumer has closed its last channel, so the transport forgets it. */
  onFinished(consumer: AmqpConsumer): void;
}

/** One consumer channel and the deliveries it has handed out. */
class ConsumerChannel implements DeliveryChannel {
  closed = false;
  unsettled = 0;
  consumerTag?: string;
  /** Cancelled with deliveries outstanding: close once they are settled. */
  retiring = false;

  constructor(readonly channel: Channel) {}

  async close(): Promise<void> {
    await closeWithin(() => this.channel.close(), CLOSE_TIMEOUT_MS);
  }
}

/** Longest wait for a new consumer channel to open and start consuming. */
const OPEN_TIMEOUT_MS = 10_000;

/** The kit's prefetch rule, up to what basic.qos can carry: its prefetch-count is 16 bits. */
const AMQP_PREFETCH_RULE: NumberRule = { ...PREFETCH_RULE, max: 65_535 };

/**
 * `prefetch` if it can be the basic.qos of a consumer of `queue`; otherwise a `ConfigError`
 * naming the queue and the value.
 * @internal
 */
export function checkPrefetch(queue: string, prefetch: unknown): number {
  return new OptionChecker(`AmqpTransport, queue '${queue}'`).number(
    'prefetch',
    prefetch,
    AMQP_PREFETCH_RULE,
  );
}

/**
 * A consumer that outlives its channels. Each consumer has a channel of its own on the consumer
 * connection, with basic.qos `prefetch` and manual acks. When the channel or the connection dies,
 * it consumes again on a new channel (after the connection manager reconnects, or after a backoff
 * if only the channel died) with the same handler and prefetch; the caller sees nothing but
 * redeliveries of what was unsettled.
 * @internal
 */
export class AmqpConsumer implements Consumer {
  private current?: ConsumerChannel;
  /** Every open channel, the current one and retiring ones with deliveries still held. */
  private readonly channels = new Set<ConsumerChannel>();
  private cancelled = false;
  private starting?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private retryRound = 0;
  /** Counts opens, so only the latest one becomes current. */
  private generation = 0;

  constructor(
    readonly queue: string,
    private readonly handler: DeliveryHandler,
    private prefetch: number,
    private readonly context: ConsumerContext,
  ) {}

  /**
   * Changes the channel's basic.qos at run time; a channel opened later (after a reconnect)
   * uses the new value too.
   */
  async setPrefetch(prefetch: number): Promise<void> {
    this.prefetch = checkPrefetch(this.queue, prefetch);
    const state = this.current;
    if (!state || state.closed || state.consumerTag === undefined) return;
    // RabbitMQ applies a per-consumer limit only to consumers started after it (and quorum
    // queues refuse a channel-wide one), so the consumer starts again on its channel under the
    // new limit. Deliveries the old consumer handed out stay valid (acks go by delivery tag);
    // until they are settled the channel may briefly hold more than the new limit.
    await state.channel.prefetch(prefetch);
    const previous = state.consumerTag;
    const reply = await state.channel.consume(
      this.queue,
      (message) => this.received(state, message),
      { noAck: false },
    );
    state.consumerTag = reply.consumerTag;
    await state.channel.cancel(previous);
  }

  /** Starts consuming; errors go to the caller of `consume()`. */
  async start(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const model = await this.context.connection.connection(Math.max(1, deadline - Date.now()));
      try {
        await this.open(model);
        return;
      } catch (error) {
        if (replyCode(error) === 404) throw new UnroutableError('', this.queue);
        if (isRefusal(error)) {
          throw new ConnectionError(`cannot consume queue '${this.queue}': ${serverText(error)}`, {
            cause: error,
          });
        }
        if (Date.now() >= deadline) {
          throw new ConnectionError(`cannot consume queue '${this.queue}': ${messageOf(error)}`, {
            cause: error,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Consumes again on `model` if the consumer lost its channel. */
  resume(model: ChannelModel): Promise<void> {
    if (this.cancelled || (this.current && !this.current.closed)) return Promise.resolve();
    // Bounded: an open stuck on a connection that died under it must not block every later
    // resume. A late success of a superseded open closes its channel (see `open`).
    this.starting ??= this.boundedOpen(model)
      .catch((error: unknown) => {
        this.context.logger.warn(`cannot consume queue '${this.queue}' again: ${messageOf(error)}`);
        this.scheduleRetry();
      })
      .finally(() => {
        this.starting = undefined;
      });
    return this.starting;
  }

  /** Stops new deliveries; the channel stays open until the held ones are settled. */
  async cancel(): Promise<void> {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.retryTimer);
    await this.starting;
    const state = this.current;
    if (!state || state.closed) {
      this.finishIfIdle();
      return;
    }
    if (state.consumerTag !== undefined) {
      await state.channel.cancel(state.consumerTag).catch(() => undefined);
    }
    if (state.unsettled === 0) await state.close();
    else state.retiring = true;
  }

  /**
   * For transport shutdown: no more resuming, and every channel closed, which gives unsettled
   * deliveries back. Closing the channels rather than only the connection also makes sure acks
   * written just before are sent first: amqplib can send a connection close ahead of channel
   * frames still buffered, and those acks would be lost.
   */
  async stop(): Promise<void> {
    this.cancelled = true;
    clearTimeout(this.retryTimer);
    await this.starting;
    await Promise.all([...this.channels].filter((c) => !c.closed).map((c) => c.close()));
  }

  private async boundedOpen(model: ChannelModel): Promise<void> {
    const generation = ++this.generation;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`opening a channel took longer than ${OPEN_TIMEOUT_MS} ms`)),
        OPEN_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([this.open(model, generation), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async open(model: ChannelModel, generation = ++this.generation): Promise<void> {
    const channel = await model.createChannel();
    const state = new ConsumerChannel(channel);
    this.channels.add(state);
    channel.on('error', (error: Error) => {
      if (!this.cancelled)
        this.context.logger.warn(
          `consumer channel of queue '${this.queue}' closed: ${messageOf(error)}`,
        );
    });
    channel.on('close', () => this.channelClosed(state));
    try {
      // Per consumer: quorum queues refuse a channel-wide (global) limit.
      await channel.prefetch(this.prefetch);
      const reply = await channel.consume(this.queue, (message) => this.received(state, message), {
        noAck: false,
      });
      state.consumerTag = reply.consumerTag;
    } catch (error) {
      void state.close();
      throw error;
    }
    if (this.cancelled || generation !== this.generation) {
      await state.close();
      return;
    }
    this.current = state;
    this.retryRound = 0;
  }

  private received(state: ConsumerChannel, raw: ConsumeMessage | null): void {
    if (raw === null) {
      // The broker cancelled us: the queue was deleted (or, on a cluster, its node went away).
      this.context.logger.warn(
        `the broker cancelled the consumer of queue '${this.queue}'; consuming again`,
      );
      if (this.current === state) this.current = undefined;
      if (state.unsettled === 0) void state.close();
      else state.retiring = true;
      this.scheduleRetry();
      return;
    }
    if (this.cancelled) {
      // In flight when we cancelled: give it straight back rather than hand it to a stopped consumer.
      try {
        state.channel.nack(raw, false, true);
      } catch {
        // The channel is gone, which gives it back too.
      }
      return;
    }
    state.unsettled += 1;
    const message = transportMessage(raw, this.context.isDelayExchange(raw.fields.exchange));
    const delivery = new AmqpDelivery(
      raw,
      state,
      this.queue,
      message,
      this.context.publishDeadLetter,
      () => {
        state.unsettled -= 1;
        if (state.retiring && state.unsettled === 0) void state.close();
      },
    );
    try {
      this.handler(delivery);
    } catch (error) {
      this.context.logger.warn(`the handler of queue '${this.queue}' threw: ${messageOf(error)}`);
    }
  }

  private channelClosed(state: ConsumerChannel): void {
    state.closed = true;
    this.channels.delete(state);
    this.finishIfIdle();
    if (this.current !== state) return;
    this.current = undefined;
    if (this.cancelled) return;
    // If the connection died too, its manager resumes us once reconnected; the timer covers a
    // channel the broker closed on a live connection (e.g. consumer_timeout).
    this.scheduleRetry();
  }

  private finishIfIdle(): void {
    if (this.cancelled && this.channels.size === 0) this.context.onFinished(this);
  }

  private scheduleRetry(): void {
    if (this.cancelled || this.retryTimer) return;
    this.retryRound += 1;
    const delay = reconnectDelay(this.retryRound, this.context.reconnect);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const model = this.context.connection.current;
      // Without a connection, its manager resumes us when it reconnects.
      if (model) void this.resume(model);
    }, delay);
  }
}
