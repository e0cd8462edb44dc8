import type { Channel, ChannelModel } from 'amqplib';
import {
  ConfigError,
  UnroutableError,
  deadLetterQueueName,
  type QueueDeclaration,
} from '@conveyor/core/plugin';
import { inequivalentArgument, isRefusal, replyCode, serverText } from './broker-errors';
import type { DelayTopology } from './delayed-delivery';

/**
 * What the transport declares on the broker, and its memory of it.
 *
 * For a task queue Q: a durable direct exchange Q, a durable queue Q bound to it with routing key
 * Q (Celery's own layout, so a Python worker declaring `celery` finds the same thing), and a
 * durable queue `Q.dead`. Q carries only the arguments asked for (`x-max-priority`,
 * `x-queue-type: quorum`): no `x-dead-letter-exchange`, because Celery redeclares its queues
 * without arguments and RabbitMQ refuses an inequivalent redeclaration. Dead-lettering is
 * therefore done by the transport (publish a copy to `Q.dead`, then ack).
 *
 * Everything declared is remembered and declared again after a reconnect. Declarations run on
 * short-lived channels, because RabbitMQ answers a refused declaration by closing the channel.
 * @internal
 */
export class Topology {
  private readonly queues = new Map<string, QueueDeclaration>();
  private readonly knownExchanges = new Set<string>();
  private readonly delayBound = new Set<string>();
  private delayDeclared = false;
  private readonly checks = new Map<string, Promise<void>>();

  constructor(
    readonly delay: DelayTopology,
    private readonly defaultQueueType: 'classic' | 'quorum',
  ) {}

  /** Declares task queue `declaration.name` and what it needs. */
  async declareQueue(model: ChannelModel, declaration: QueueDeclaration): Promise<void> {
    await this.declareDelay(model);
    await withChannel(model, (channel) => this.declareOn(channel, declaration));
    this.queues.set(declaration.name, { ...declaration });
    this.knownExchanges.add(declaration.name);
    this.delayBound.add(declaration.name);
  }

  /** Declares the shared delay levels, once per transport (and again after reconnects). */
  async declareDelay(model: ChannelModel): Promise<void> {
    if (this.delayDeclared) return;
    await this.once('delay', () =>
      withChannel(model, (channel) =>
        refusalAsConfigError(
          this.delay.declare(channel),
          `the delay levels '${this.delay.namespace}.*'`,
        ),
      ),
    );
    this.delayDeclared = true;
  }

  /** Declares again everything declared so far: after a reconnect the broker may have lost it. */
  async redeclare(model: ChannelModel): Promise<void> {
    if (this.delayDeclared) {
      await withChannel(model, (channel) => this.delay.declare(channel));
    }
    for (const declaration of this.queues.values()) {
      await withChannel(model, (channel) => this.declareOn(channel, declaration));
    }
  }

  /** True when exchange `name` is known to exist, so a publish to it needs no check. */
  hasExchange(name: string): boolean {
    return this.knownExchanges.has(name);
  }

  /** Forgets that exchange `name` exists (the broker said it does not). */
  forgetExchange(name: string): void {
    this.knownExchanges.delete(name);
  }

  /**
   * Makes sure exchange `name` exists, so a publish to it cannot make RabbitMQ close the confirm
   * channel with a 404 (which would take every other unconfirmed publish down with it).
   * Throws `UnroutableError` if it does not.
   */
  async checkExchange(model: ChannelModel, name: string): Promise<void> {
    if (this.knownExchanges.has(name)) return;
    await this.once(`exchange:${name}`, () =>
      withChannel(model, async (channel) => {
        try {
          await channel.checkExchange(name);
        } catch (error) {
          if (replyCode(error) === 404) throw new UnroutableError(name, name);
          throw error;
        }
      }),
    );
    this.knownExchanges.add(name);
  }

  /** True when delayed messages can already reach `queue`. */
  hasDelayBinding(queue: string): boolean {
    return this.delayBound.has(queue);
  }

  /**
   * Binds `queue` to the delay delivery exchange, for a queue declared by someone else (a
   * Python worker, another process). Throws `UnroutableError` if the queue does not exist.
   */
  async bindForDelay(model: ChannelModel, queue: string): Promise<void> {
    if (this.delayBound.has(queue)) return;
    await this.declareDelay(model);
    await this.once(`delay-binding:${queue}`, () =>
      withChannel(model, async (channel) => {
        try {
          await this.delay.bindQueue(channel, queue);
        } catch (error) {
          if (replyCode(error) === 404)
            throw new UnroutableError(this.delay.deliveryExchange, queue);
          throw error;
        }
      }),
    );
    this.delayBound.add(queue);
  }

  private async declareOn(channel: Channel, declaration: QueueDeclaration): Promise<void> {
    const name = declaration.name;
    const queueType = declaration.queueType ?? this.defaultQueueType;
    const args: Record<string, unknown> = {};
    if (declaration.maxPriority !== undefined) args['x-max-priority'] = declaration.maxPriority;
    if (queueType === 'quorum') args['x-queue-type'] = 'quorum';
    const deadArgs = queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
    const dead = deadLetterQueueName(name);
    await refusalAsConfigError(
      channel.assertExchange(name, 'direct', { durable: true }),
      `exchange '${name}'`,
    );
    await refusalAsConfigError(
      channel.assertQueue(name, { durable: true, arguments: args }),
      `queue '${name}'`,
    );
    await channel.bindQueue(name, name, name);
    await refusalAsConfigError(
      channel.assertQueue(dead, { durable: true, arguments: deadArgs }),
      `queue '${dead}'`,
    );
    if (this.delayDeclared) await this.delay.bindQueue(channel, name);
  }

  /** Runs `work` once for concurrent callers with the same `key`. */
  private async once(key: string, work: () => Promise<void>): Promise<void> {
    let running = this.checks.get(key);
    if (!running) {
      running = work().finally(() => this.checks.delete(key));
      this.checks.set(key, running);
    }
    await running;
  }
}

/** Runs `work` on a fresh channel of `model`, closed afterwards. @internal */
export async function withChannel<T>(
  model: ChannelModel,
  work: (channel: Channel) => Promise<T>,
): Promise<T> {
  const channel = await model.createChannel();
  // A refusal closes the channel and also rejects the operation that caused it; the event is
  // only listened to so that it is not thrown.
  channel.on('error', () => undefined);
  try {
    return await work(channel);
  } finally {
    channel.close().catch(() => undefined);
  }
}

/** Turns RabbitMQ's refusal of a declaration (406 and friends) into a `ConfigError`. */
async function refusalAsConfigError<T>(operation: Promise<T>, what: string): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (!isRefusal(error)) throw error;
    const argument = inequivalentArgument(error);
    const detail = serverText(error);
    const message = argument
      ? `cannot declare ${what}: it already exists with a different '${argument}' (RabbitMQ: ${detail}). ` +
        'Declare it with the settings it has, or delete it first.'
      : `cannot declare ${what}: RabbitMQ refused it (${detail})`;
    throw new ConfigError(message, { cause: error });
  }
}
