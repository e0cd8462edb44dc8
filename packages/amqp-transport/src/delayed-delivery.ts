import type { Channel } from 'amqplib';
import { ConfigError } from '@conveyor/core/plugin';
import { DELAY_LEVELS } from './defaults';

/** Longest delay the levels can express: every level's bit set. */
export const MAX_DELAY_MS = 2 ** DELAY_LEVELS - 1;

/** Longest AMQP routing key (a shortstr). */
const MAX_ROUTING_KEY_BYTES = 255;

/**
 * Delayed delivery built from message TTL and dead-lettering, for brokers without the
 * delayed-message plugin (the NServiceBus design, in milliseconds).
 *
 * A delay of d ms is written in binary. Level L (0..31) is a topic exchange and a queue whose
 * messages live exactly 2^L ms. The routing key carries the 32 bits of d, most significant
 * first, then the destination queue: `b31.b30.….b0.<queue>`. Level L's exchange sends a message
 * whose bit L is 1 into level L's queue, where it waits 2^L ms and then dead-letters to level
 * L-1's exchange; a message whose bit L is 0 passes straight on to level L-1's exchange. Below
 * level 0 sits the delivery exchange, which routes `*.….*.<queue>` (exactly 32 bit words, so a
 * dotted queue name cannot be confused with a shorter one) to the queue. A message therefore
 * waits the sum of 2^L over its set bits: exactly d.
 *
 * Every message in one level queue has the same TTL, so the queue's head is always the next to
 * expire; RabbitMQ only expires from the head, and that is what makes fixed levels work. No
 * consumer holds the waiting messages, so they take no prefetch slot and never meet
 * `consumer_timeout`; they are persistent in durable queues, so they survive a broker restart.
 * @internal
 */
export class DelayTopology {
  constructor(readonly namespace: string) {}

  /** Name of level `level`'s exchange and of its queue (RabbitMQ keeps the two apart). */
  levelName(level: number): string {
    return `${this.namespace}.level-${String(level).padStart(2, '0')}`;
  }

  /** The exchange that hands a message whose delay has run out to its queue. */
  get deliveryExchange(): string {
    return `${this.namespace}.delivery`;
  }

  /**
   * True for the exchanges of this delay topology. A message leaving the levels is delivered
   * with the dead-letter exchange it last entered (a level's, or the delivery exchange).
   */
  isDelayExchange(name: string): boolean {
    return name === this.deliveryExchange || name.startsWith(`${this.namespace}.level-`);
  }

  /** Binding of `queue` on the delivery exchange. */
  deliveryPattern(queue: string): string {
    return `${'*.'.repeat(DELAY_LEVELS)}${queue}`;
  }

  /** Where to publish a message for `queue` that is due in `delayMs` (1..MAX_DELAY_MS). */
  route(delayMs: number, queue: string): { exchange: string; routingKey: string } {
    const bits: string[] = [];
    for (let level = DELAY_LEVELS - 1; level >= 0; level -= 1) {
      bits.push(Math.floor(delayMs / 2 ** level) % 2 === 1 ? '1' : '0');
    }
    // Entering at the highest set bit skips the hops through empty levels above it.
    const highest = Math.floor(Math.log2(delayMs));
    return { exchange: this.levelName(highest), routingKey: `${bits.join('.')}.${queue}` };
  }

  /** Throws `ConfigError` if messages for `queue` cannot travel through the levels. */
  checkQueueName(queue: string): void {
    if (queue.split('.').some((word) => word === '*' || word === '#')) {
      throw new ConfigError(
        `queue '${queue}' cannot take delayed messages: a dot-separated word '*' or '#' is a topic wildcard`,
      );
    }
    if (Buffer.byteLength(this.deliveryPattern(queue)) > MAX_ROUTING_KEY_BYTES) {
      throw new ConfigError(
        `queue '${queue}' cannot take delayed messages: its name is longer than ${MAX_ROUTING_KEY_BYTES - 2 * DELAY_LEVELS} bytes`,
      );
    }
  }

  /** Declares every level and the delivery exchange. Idempotent. */
  async declare(channel: Channel): Promise<void> {
    // amqplib sends a channel's operations in order, one at a time, so issuing them together
    // keeps their order while saving the wait between them.
    const steps: Array<Promise<unknown>> = [
      channel.assertExchange(this.deliveryExchange, 'topic', { durable: true }),
    ];
    for (let level = 0; level < DELAY_LEVELS; level += 1) {
      const name = this.levelName(level);
      const next = level === 0 ? this.deliveryExchange : this.levelName(level - 1);
      const before = '*.'.repeat(DELAY_LEVELS - 1 - level);
      steps.push(
        channel.assertExchange(name, 'topic', { durable: true }),
        channel.assertQueue(name, {
          durable: true,
          arguments: {
            // Explicit, so a vhost whose default queue type is quorum does not change it.
            'x-queue-type': 'classic',
            'x-message-ttl': 2 ** level,
            'x-dead-letter-exchange': next,
          },
        }),
        channel.bindQueue(name, name, `${before}1.#`),
        channel.bindExchange(next, name, `${before}0.#`),
      );
    }
    await Promise.all(steps);
  }

  /** Lets delayed messages reach `queue`. */
  async bindQueue(channel: Channel, queue: string): Promise<void> {
    await channel.bindQueue(queue, this.deliveryExchange, this.deliveryPattern(queue));
  }
}
