/**
 * The optional capability behind `conveyor queues` and `conveyor purge`: reading a queue's
 * counts and emptying it. A transport offers it by implementing {@link QueueInspection}; callers
 * ask for it with {@link queueInspectionOf}, which refuses clearly when it is absent.
 */
import { ConfigError } from '../errors';
import type { Transport } from './transport';

/** Messages per second through a queue, as the broker samples them. */
export interface QueueRates {
  /** Messages published to the queue. */
  published: number;
  /** Messages delivered to consumers (or fetched). */
  delivered: number;
  /** Deliveries acknowledged. */
  acked: number;
}

/** What the broker says about one queue at one moment. */
export interface QueueStatistics {
  /** The queue. */
  name: string;
  /** Messages ready for delivery (not counting delivered, unacknowledged ones). */
  ready: number;
  /** Consumers subscribed to the queue. */
  consumers: number;
  /** Messages delivered and not yet acknowledged; absent when the transport cannot tell. */
  unacked?: number;
  /** Sampled message rates; absent when the transport cannot tell. */
  rates?: QueueRates;
}

/** A transport that can count and purge queues. */
export interface QueueInspection {
  /**
   * Statistics of each queue named, in the same order; `undefined` for a queue that does not
   * exist. Reads only: never declares a queue.
   */
  queueStatistics(names: readonly string[]): Promise<Array<QueueStatistics | undefined>>;
  /**
   * Messages waiting in the transport's delayed delivery (countdowns, etas, retries), all queues
   * together; `undefined` when the transport cannot tell.
   */
  delayedCount(): Promise<number | undefined>;
  /**
   * Deletes the ready messages of queue `name` (delivered, unacknowledged ones stay) and
   * resolves with how many. Throws `ConfigError` if the queue does not exist.
   */
  purgeQueue(name: string): Promise<number>;
}

/** True when `transport` offers {@link QueueInspection}. */
export function hasQueueInspection(transport: Transport): transport is Transport & QueueInspection {
  const candidate = transport as Partial<QueueInspection>;
  return (
    typeof candidate.queueStatistics === 'function' &&
    typeof candidate.delayedCount === 'function' &&
    typeof candidate.purgeQueue === 'function'
  );
}

/** `transport` as a {@link QueueInspection}, or a `ConfigError` naming what offers one. */
export function queueInspectionOf(transport: Transport): Transport & QueueInspection {
  if (hasQueueInspection(transport)) return transport;
  throw new ConfigError(
    `the transport ${transport.constructor.name} cannot inspect or purge queues ` +
      '(capability: queue inspection; @conveyor/amqp-transport offers it)',
  );
}
