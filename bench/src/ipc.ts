/** Messages between the bench (parent) and its forked child processes. */
import type { BenchAppSettings } from './conveyor-app';

/** Result backend of a forked Conveyor worker. */
export type BackendKind = 'redis' | 'postgres' | 'none';

/** What a forked Conveyor worker builds (passed in env `BENCH_CHILD_CONFIG` as JSON). */
export interface WorkerChildConfig extends Omit<BenchAppSettings, 'backend'> {
  kind: 'conveyor-worker';
  backend: BackendKind;
  concurrency: number;
  prefetchMultiplier: number;
  /** Send Celery task events (the `events` scenario). */
  taskEvents?: boolean;
}

/** What a forked raw amqplib consumer does (passed the same way). */
export interface RawConsumerChildConfig {
  kind: 'raw-consumer';
  queue: string;
  amqpUrl: string;
  prefetch: number;
  noDelay: boolean;
  /** Publish a reply to each message's `replyTo` (the ceiling) or only ack (the split scenario). */
  reply: boolean;
  /**
   * Instead of replying through RabbitMQ, store a Celery result meta for each message in Redis
   * (SET with an expiry, then PUBLISH on the key) and ack once Redis answered: the work of a
   * Redis-backed worker, done raw.
   */
  results?: { redisUrl: string; keyPrefix: string };
}

/** The backlog's producer (passed the same way): a Conveyor app that only sends. */
export interface ProducerChildConfig extends Omit<
  WorkerChildConfig,
  'kind' | 'concurrency' | 'prefetchMultiplier'
> {
  kind: 'conveyor-producer';
  /** Tasks to send on `start`. */
  n: number;
  /** delay() calls in flight at once. */
  window: number;
}

/** The `events` scenario's receiver in its own process (passed the same way). */
export interface EventReceiverChildConfig extends Omit<BenchAppSettings, 'backend'> {
  kind: 'event-receiver';
}

export type ChildConfig =
  WorkerChildConfig | RawConsumerChildConfig | ProducerChildConfig | EventReceiverChildConfig;

/** Parent → child. */
export type ParentMessage =
  | { type: 'start' }
  | { type: 'stats' }
  /** Send `reached` once this many messages have been acked in total. */
  | { type: 'notify-at'; acked: number }
  | { type: 'stop' };

/** Child → parent. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'started' }
  /** `cpuMs`: user + system CPU time of the child so far. */
  | {
      type: 'stats';
      acked: number;
      rss: number;
      heapUsed: number;
      cpuMs: number;
      /** Celery events a worker sent and dropped. */
      events?: { sent: number; dropped: number };
    }
  | { type: 'reached'; acked: number }
  | { type: 'stopped' }
  /** The producer child sent all its tasks (each confirmed by the broker) in `ms`. */
  | { type: 'published'; ms: number }
  | { type: 'error'; message: string };

export const CHILD_CONFIG_ENV = 'BENCH_CHILD_CONFIG';
