import { closeWithin } from '@conveyor/core/plugin';
import { CLOSE_TIMEOUT_MS } from './bounded-close';
import { publishConfirmed } from './confirmed-publish';
import { batchWrites } from './write-batching';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { ConnectionError, UnroutableError } from '@conveyor/core/plugin';
import type { AmqpTransportLogger } from './amqp-transport-options';
import { isRefusal, messageOf, missingExchange, serverText } from './broker-errors';
import type { ConnectionManager } from './connection-manager';
import { MAX_PUBLISH_ATTEMPTS, PUBLISH_WATCHDOG_INTERVAL_MS } from './defaults';

/** Settings of a {@link Publisher}. */
export interface PublisherSettings {
  publishTimeoutMs: number;
  /** Publishes written and awaiting their confirm, at most, per channel. */
  maxUnconfirmed: number;
  logger: AmqpTransportLogger;
  /** Told when the broker says an exchange the transport believed in does not exist. */
  onMissingExchange(name: string): void;
}

/** One publish, from the call until the broker's confirm (or its failure). */
interface PendingPublish {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  /** When publish() was called. */
  readonly since: number;
  attempts: number;
  /** The broker sent it back (basic.return): it will be confirmed, but reached no queue. */
  returned: boolean;
  settled: boolean;
  resolve(): void;
  reject(error: Error): void;
}

/** A confirm channel and the publishes written to it that await their confirm. */
class PublishChannel {
  readonly inFlight = new Set<PendingPublish>();
  closed = false;
  /** Why the server closed it, when it did (404 no exchange, 403...). */
  closeError?: Error;
  writable = true;
  /** Publishes whose confirm was lost with the channel, to write again. */
  readonly lost: PendingPublish[] = [];
  private wakers: Array<() => void> = [];

  constructor(
    readonly channel: ConfirmChannel,
    private readonly maxUnconfirmed: number,
  ) {}

  /** True when another publish may be written: the buffer has room and the window is not full. */
  get ready(): boolean {
    return this.writable && this.inFlight.size < this.maxUnconfirmed;
  }

  /** Resolves when the channel can take more (drain, or a confirm in a full window) or is gone. */
  whenReady(): Promise<void> {
    if (this.ready || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  /** A confirm (or failure) took `p` out of the window. */
  release(p: PendingPublish): void {
    this.inFlight.delete(p);
    if (this.wakers.length > 0 && this.ready) this.wake();
  }

  wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }
}

/**
 * Publishing with publisher confirms on one confirm channel of the publisher connection.
 *
 * Publishes are written in call order by a single pump. When `maxUnconfirmed` publishes await
 * their confirm, or amqplib's write buffer is full (`publish()` returns false), the pump waits for
 * a confirm or `drain`, so a burst queues in this process as the caller's own message objects,
 * never as an ever-growing socket buffer or ahead of the consumers' acks in the broker. The
 * publishes written in one turn (a window refilled by a batch of confirms, usually) leave in one
 * socket write.
 *
 * A publish resolves on the broker's ack; one the broker returned (mandatory, no queue) rejects
 * with `UnroutableError`. If the channel or connection dies before the confirm, the message is
 * written again on the next channel and the publish resolves on that confirm: it may then be
 * delivered twice, never lost. A publish that sees no broker progress (no connection, no confirm,
 * no drain) for `publishTimeoutMs` rejects with `ConnectionError`; it may still have arrived.
 * @internal
 */
export class Publisher {
  private waiting: PendingPublish[] = [];
  private head = 0;
  private current?: PublishChannel;
  private opening?: Promise<PublishChannel | undefined>;
  private pumping = false;
  private closed = false;
  private pending = 0;
  private lastProgress = Date.now();
  private watchdog?: NodeJS.Timeout;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly connection: ConnectionManager,
    private readonly settings: PublisherSettings,
  ) {}

  /** Publishes and resolves once the broker has confirmed. */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
  ): Promise<void> {
    if (this.closed) return Promise.reject(new ConnectionError('the AMQP transport is closed'));
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({
        exchange,
        routingKey,
        content,
        options,
        since: Date.now(),
        attempts: 0,
        returned: false,
        settled: false,
        resolve,
        reject,
      });
      this.pending += 1;
      this.startWatchdog();
      void this.pump();
    });
  }

  /** Refuses new publishes and waits until every pending one has settled (bounded by the timeout). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pending > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.stopWatchdog();
    const channel = this.current;
    this.current = undefined;
    if (channel && !channel.closed)
      await closeWithin(() => channel.channel.close(), CLOSE_TIMEOUT_MS);
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const next = this.peek();
        if (!next) return;
        let channel = this.current;
        if (!channel || channel.closed) {
          channel = await this.openChannel();
          if (!channel) return;
          continue;
        }
        if (!channel.ready) {
          await channel.whenReady();
          continue;
        }
        this.head += 1;
        this.write(channel, next);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The next publish to write, skipping those that timed out while waiting. */
  private peek(): PendingPublish | undefined {
    while (this.head < this.waiting.length && this.waiting[this.head]!.settled) this.head += 1;
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
    return this.waiting[this.head];
  }

  private write(channel: PublishChannel, p: PendingPublish): void {
    p.attempts += 1;
    channel.inFlight.add(p);
    let ok: boolean;
    try {
      batchWrites(channel.channel);
      ok = publishConfirmed(
        channel.channel,
        p.exchange,
        p.routingKey,
        p.content,
        p.options,
        (error: unknown) => this.confirmed(channel, p, error),
      );
    } catch (error) {
      channel.inFlight.delete(p);
      if (channel.closed || (error instanceof Error && error.name === 'IllegalOperationError')) {
        // The channel is closing under us: write it on the next one.
        p.attempts -= 1;
        channel.closed = true;
        this.writeAgain([p]);
      } else {
        // amqplib refuses the message itself (headers table over 64 KiB, bad property...).
        this.fail(p, error instanceof Error ? error : new Error(String(error)));
      }
      return;
    }
    if (!ok) channel.writable = false;
  }

  private confirmed(channel: PublishChannel, p: PendingPublish, error: unknown): void {
    channel.release(p);
    if (!channel.closed) this.lastProgress = Date.now();
    if (p.settled) return;
    if (error === null || error === undefined) {
      if (p.returned) this.fail(p, new UnroutableError(p.exchange, p.routingKey));
      else this.succeed(p);
      return;
    }
    if (!channel.closed) {
      this.fail(
        p,
        new ConnectionError(`the broker refused (nacked) a message for exchange '${p.exchange}'`),
      );
      return;
    }
    if (p.returned) {
      this.fail(p, new UnroutableError(p.exchange, p.routingKey));
      return;
    }
    const cause = channel.closeError;
    const missing = missingExchange(cause);
    if (missing !== undefined && missing === p.exchange) {
      this.settings.onMissingExchange(missing);
      this.fail(p, new UnroutableError(p.exchange, p.routingKey));
    } else if (cause && isRefusal(cause) && missing === undefined) {
      this.fail(
        p,
        new ConnectionError(`the broker closed the publish channel: ${serverText(cause)}`, {
          cause,
        }),
      );
    } else if (p.attempts >= MAX_PUBLISH_ATTEMPTS) {
      this.fail(
        p,
        new ConnectionError(`the channel closed before a confirm ${p.attempts} times; giving up`, {
          cause,
        }),
      );
    } else {
      channel.lost.push(p);
    }
  }

  /** Puts publishes back at the front of the line, in their original order. */
  private writeAgain(publishes: PendingPublish[]): void {
    if (publishes.length === 0) return;
    this.waiting.splice(this.head, 0, ...publishes);
    void this.pump();
  }

  private async openChannel(): Promise<PublishChannel | undefined> {
    this.opening ??= this.connectChannel().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async connectChannel(): Promise<PublishChannel | undefined> {
    for (;;) {
      if (this.closed && this.pending === 0) return undefined;
      let model;
      try {
        model = await this.connection.connection();
      } catch {
        return undefined;
      }
      try {
        const channel = new PublishChannel(
          await model.createConfirmChannel(),
          this.settings.maxUnconfirmed,
        );
        this.watch(channel);
        this.current = channel;
        this.lastProgress = Date.now();
        return channel;
      } catch (error) {
        // The connection died while the channel opened; the manager is reconnecting.
        this.settings.logger.warn(`cannot open a publish channel: ${messageOf(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  private watch(state: PublishChannel): void {
    const { channel } = state;
    // Runs before amqplib's own close listener fails the unconfirmed publishes, so that
    // confirmed() can tell a lost channel from a broker nack.
    channel.prependListener('close', () => {
      state.closed = true;
      if (this.current === state) this.current = undefined;
      state.wake();
    });
    // Runs after it: every lost publish has been collected by now.
    channel.on('close', () => {
      const lost = state.lost.splice(0);
      if (lost.length > 0) {
        this.settings.logger.warn(
          `publish channel closed before ${lost.length} confirm(s); writing them again`,
        );
      }
      this.writeAgain(lost);
    });
    channel.on('error', (error: Error) => {
      state.closeError = error;
    });
    channel.on('drain', () => {
      state.writable = true;
      this.lastProgress = Date.now();
      state.wake();
    });
    channel.on('return', (message: Message) => this.returned(state, message));
  }

  /**
   * Marks the publish a basic.return belongs to. A return carries no delivery tag, so it is
   * matched on exchange, routing key, body and ids to the oldest unconfirmed publish that fits;
   * two publishes that match alike are indistinguishable, so which one is marked does not matter.
   */
  private returned(state: PublishChannel, message: Message): void {
    const { fields, properties, content } = message;
    for (const p of state.inFlight) {
      if (
        !p.returned &&
        p.exchange === fields.exchange &&
        p.routingKey === fields.routingKey &&
        p.options.messageId === properties.messageId &&
        p.options.correlationId === properties.correlationId &&
        p.content.equals(content)
      ) {
        p.returned = true;
        return;
      }
    }
  }

  private succeed(p: PendingPublish): void {
    this.settle(p);
    p.resolve();
  }

  private fail(p: PendingPublish, error: Error): void {
    this.settle(p);
    p.reject(error);
  }

  private settle(p: PendingPublish): void {
    p.settled = true;
    this.pending -= 1;
    if (this.pending === 0) {
      this.stopWatchdog();
      const waiters = this.idleWaiters.splice(0);
      for (const waiter of waiters) waiter();
    }
  }

  private startWatchdog(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => this.expire(), PUBLISH_WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  /** Fails the publishes that have seen no broker progress for `publishTimeoutMs`. */
  private expire(): void {
    const timeout = this.settings.publishTimeoutMs;
    const now = Date.now();
    if (now - this.lastProgress <= timeout) return;
    const overdue = (p: PendingPublish): boolean =>
      !p.settled && now - Math.max(p.since, this.lastProgress) > timeout;
    const stale: PendingPublish[] = [];
    for (let i = this.head; i < this.waiting.length; i += 1) {
      const p = this.waiting[i]!;
      if (overdue(p)) stale.push(p);
    }
    for (const p of this.current?.inFlight ?? []) if (overdue(p)) stale.push(p);
    for (const p of stale) {
      const error = this.connection.current
        ? new ConnectionError(
            `no confirm from the broker within ${timeout} ms for a message to exchange '${p.exchange}'`,
          )
        : this.connection.unreachableError(timeout);
      this.fail(p, error);
    }
  }
}
