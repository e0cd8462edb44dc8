import {
  Conveyor,
  MemoryResultBackend,
  type ConsumeOptions,
  type Consumer,
  type Delivery,
  type DeliveryHandler,
  type ExchangeDeclaration,
  type ExchangeQueueOptions,
  type PublishOptions,
  type QueueDeclaration,
  type ResultBackend,
  type Transport,
  type TransportMessage,
} from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { PostgresResultBackend } from '@conveyor/result-postgres';
import { RedisResultBackend } from '@conveyor/result-redis';
import { Echo } from './bench-tasks';
import type { BackendKind } from './ipc';

/** What a bench app is built from; the same in the producer and in the forked workers. */
export interface BenchAppSettings {
  queue: string;
  backend: BackendKind | 'memory';
  amqpUrl: string;
  redisUrl: string;
  databaseUrl: string;
  redisPrefix: string;
  pgSchema: string;
  delayNamespace: string;
}

/**
 * Counts the deliveries a consumer acked: how completions are counted without a result backend,
 * and how a backlog's drain is followed. It wraps the AMQP transport through the public
 * `Transport` interface and adds one counter increment per ack.
 */
export class AckCountingTransport implements Transport {
  acked = 0;
  private listeners: Array<() => void> = [];

  constructor(private readonly inner: Transport) {}

  /** Called after every ack. */
  onAck(listener: () => void): void {
    this.listeners.push(listener);
  }

  connect(): Promise<void> {
    return this.inner.connect();
  }
  declareQueue(queue: QueueDeclaration): Promise<void> {
    return this.inner.declareQueue(queue);
  }
  publish(message: TransportMessage, options: PublishOptions): Promise<void> {
    return this.inner.publish(message, options);
  }
  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer> {
    return this.inner.consume(queue, (delivery) => handler(this.counted(delivery)), options);
  }
  broadcast(exchange: string, message: TransportMessage): Promise<void> {
    return this.inner.broadcast(exchange, message);
  }
  subscribeBroadcast(
    exchange: string,
    handler: (message: TransportMessage) => void,
  ): Promise<Consumer> {
    return this.inner.subscribeBroadcast(exchange, handler);
  }
  close(): Promise<void> {
    return this.inner.close();
  }

  // The exchanges and prefetch capabilities, for Celery events and remote control.
  declareExchange(exchange: ExchangeDeclaration): Promise<void> {
    return this.inner.declareExchange!(exchange);
  }
  publishToExchange(
    exchange: string,
    routingKey: string,
    message: TransportMessage,
  ): Promise<void> {
    return this.inner.publishToExchange!(exchange, routingKey, message);
  }
  subscribeExchange(
    exchange: string,
    bindingKey: string,
    handler: (message: TransportMessage) => void,
    options?: ExchangeQueueOptions,
  ): Promise<Consumer> {
    return this.inner.subscribeExchange!(exchange, bindingKey, handler, options);
  }
  setPrefetch(consumer: Consumer, prefetch: number): Promise<void> {
    return this.inner.setPrefetch!(consumer, prefetch);
  }

  private counted(delivery: Delivery): Delivery {
    return {
      message: delivery.message,
      queue: delivery.queue,
      redelivered: delivery.redelivered,
      ack: async () => {
        await delivery.ack();
        this.acked += 1;
        for (const listener of this.listeners) listener();
      },
      requeue: () => delivery.requeue(),
      deadLetter: (reason) => delivery.deadLetter(reason),
    };
  }
}

/**
 * Experiment hooks, for measuring a proposed change without editing the packages: env
 * `BENCH_EXPERIMENT` as JSON `{ "redisOptions": {...}, "workerOptions": {...},
 * "transportOptions": {...} }`. Never set by
 * the bench itself; a run made with it records it in its JSON.
 */
export interface Experiment {
  redisOptions?: Record<string, unknown>;
  workerOptions?: Record<string, unknown>;
  /** Options of every Conveyor `AmqpTransport` (producer and workers). */
  transportOptions?: Record<string, unknown>;
}

export function experiment(): Experiment {
  const raw = process.env.BENCH_EXPERIMENT;
  return raw ? (JSON.parse(raw) as Experiment) : {};
}

export function buildBackend(settings: BenchAppSettings): ResultBackend | null {
  switch (settings.backend) {
    case 'redis':
      return new RedisResultBackend({
        url: settings.redisUrl,
        redisOptions: experiment().redisOptions,
        keyPrefix: `${settings.redisPrefix}celery-task-meta-`,
        groupKeyPrefix: `${settings.redisPrefix}celery-taskset-meta-`,
      });
    case 'postgres':
      return new PostgresResultBackend({
        url: settings.databaseUrl,
        schema: settings.pgSchema,
      });
    case 'memory':
      return new MemoryResultBackend();
    case 'none':
      return null;
  }
}

/** A Conveyor app on RabbitMQ whose only task, `bench.echo`, goes to `settings.queue`. */
export function buildApp(settings: BenchAppSettings): {
  app: Conveyor;
  transport: AckCountingTransport;
} {
  const transport = new AckCountingTransport(
    new AmqpTransport({
      url: settings.amqpUrl,
      delayNamespace: settings.delayNamespace,
      connectionName: 'conveyor-bench',
      ...experiment().transportOptions,
    }),
  );
  const app = new Conveyor({
    broker: transport,
    backend: buildBackend(settings),
    defaultQueue: settings.queue,
    tasks: [Echo],
  });
  return { app, transport };
}
