import { ConfigError, ConnectionError, UnroutableError } from '../errors';
import {
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTERED_AT_HEADER,
  deadLetterQueueName,
  type ConsumeOptions,
  type Consumer,
  type Delivery,
  type DeliveryHandler,
  type ExchangeDeclaration,
  type ExchangeQueueOptions,
  type FetchedMessage,
  type PublishOptions,
  type QueueDeclaration,
  type QueueStats,
  type Transport,
  type TransportMessage,
} from '../transport/transport';
import { OptionChecker } from '../plugin/option-checks';
import { PREFETCH_RULE } from '../worker/consumption-rules';
import {
  MemoryBroker,
  type MemoryConsumer,
  type MemoryQueue,
  type StoredMessage,
} from './memory-broker';

/** Options of {@link MemoryTransport}. */
export interface MemoryTransportOptions {
  /**
   * The broker to use. Share one between transports to model several connections to one server.
   * @defaultValue a new broker of this transport's own
   */
  broker?: MemoryBroker;
}

/**
 * The in-memory transport: Conveyor's default, so an app runs with no server. It keeps the
 * semantics a network broker has (copies of messages, asynchronous delivery, prefetch,
 * requeue on close, dead-letter queues, delayed delivery) so code tested on it behaves the same
 * on RabbitMQ. Messages live only as long as the process.
 */
export class MemoryTransport implements Transport {
  /** The broker state this transport talks to. */
  readonly broker: MemoryBroker;
  private readonly consumers = new Set<TransportConsumer>();
  private readonly subscriptions = new Set<() => void>();
  private readonly handles = new WeakMap<Consumer, TransportConsumer>();
  /** The holders of messages taken by `fetch()`, one per queue. */
  private readonly fetchers = new Map<string, Fetcher>();
  private closed = false;

  constructor(options: MemoryTransportOptions = {}) {
    this.broker = options.broker ?? new MemoryBroker();
  }

  async connect(): Promise<void> {
    this.closed = false;
  }

  async declareQueue(declaration: QueueDeclaration): Promise<void> {
    this.closed = false;
    this.broker.declare(declaration.name, declaration.maxPriority);
    this.broker.declare(deadLetterQueueName(declaration.name));
  }

  async publish(message: TransportMessage, options: PublishOptions): Promise<void> {
    this.closed = false;
    const queue = this.broker.queue(options.queue);
    if (!queue) throw new UnroutableError('', options.queue);
    const stored: StoredMessage = { message: copyMessage(message), redelivered: false };
    if (options.deliverAt !== undefined && options.deliverAt > Date.now()) {
      this.broker.delay(options.deliverAt, () => queue.enqueue(stored));
    } else {
      queue.enqueue(stored);
    }
  }

  async publishToQueue(queueName: string, message: TransportMessage): Promise<void> {
    this.closed = false;
    const queue = this.broker.queue(queueName);
    if (!queue) throw new UnroutableError('', queueName);
    queue.enqueue({ message: copyMessage(message), redelivered: false });
  }

  async fetch(queueName: string): Promise<FetchedMessage | undefined> {
    this.closed = false;
    const queue = this.broker.queue(queueName);
    if (!queue) throw new UnroutableError('', queueName);
    const stored = queue.take();
    if (!stored) return undefined;
    let fetcher = this.fetchers.get(queueName);
    if (!fetcher) {
      fetcher = new Fetcher(this.broker, queue);
      this.fetchers.set(queueName, fetcher);
    }
    return fetcher.hold(stored);
  }

  async consume(
    queueName: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    if (this.closed) throw new ConnectionError('memory transport is closed');
    const queue = this.broker.queue(queueName);
    if (!queue) throw new UnroutableError('', queueName);
    const prefetch = check.number('prefetch', options.prefetch, PREFETCH_RULE);
    const consumer = new TransportConsumer(this.broker, queue, handler, prefetch, this);
    this.consumers.add(consumer);
    queue.addConsumer(consumer);
    const handle: Consumer = {
      cancel: async () => {
        queue.removeConsumer(consumer);
        this.consumers.delete(consumer);
        consumer.cancelled = true;
      },
    };
    this.handles.set(handle, consumer);
    return handle;
  }

  async setPrefetch(handle: Consumer, prefetch: number): Promise<void> {
    const consumer = this.handles.get(handle);
    if (!consumer) throw new ConfigError('setPrefetch: not a consumer of this transport');
    consumer.prefetch = check.number('prefetch', prefetch, PREFETCH_RULE);
    consumer.queue.schedule();
  }

  async declareExchange(exchange: ExchangeDeclaration): Promise<void> {
    this.broker.declareExchange(exchange);
  }

  /** Rejects at once (dropped) while this transport is closed or the exchange is unknown. */
  async publishToExchange(
    exchange: string,
    routingKey: string,
    message: TransportMessage,
  ): Promise<void> {
    if (this.closed) throw new ConnectionError('memory transport is closed');
    if (!this.broker.publishToExchange(exchange, routingKey, message)) {
      throw new ConnectionError(`exchange '${exchange}' was not declared`);
    }
  }

  /** Queue options are accepted and ignored: nothing outlives the process here anyway. */
  async subscribeExchange(
    exchange: string,
    bindingKey: string,
    handler: (message: TransportMessage) => void,
    _options?: ExchangeQueueOptions,
  ): Promise<Consumer> {
    this.closed = false;
    const unbind = this.broker.bindExchange(exchange, bindingKey, handler);
    this.subscriptions.add(unbind);
    return {
      cancel: async () => {
        unbind();
        this.subscriptions.delete(unbind);
      },
    };
  }

  async broadcast(exchange: string, message: TransportMessage): Promise<void> {
    this.broker.broadcast(exchange, message);
  }

  async subscribeBroadcast(
    exchange: string,
    handler: (message: TransportMessage) => void,
  ): Promise<Consumer> {
    const unsubscribe = this.broker.subscribe(exchange, handler);
    this.subscriptions.add(unsubscribe);
    return {
      cancel: async () => {
        unsubscribe();
        this.subscriptions.delete(unsubscribe);
      },
    };
  }

  async queueStats(queueName: string): Promise<QueueStats> {
    const queue = this.broker.queue(queueName);
    if (!queue) throw new UnroutableError('', queueName);
    return { ready: queue.size, consumers: queue.consumerCount };
  }

  async purgeQueue(queueName: string): Promise<number> {
    const queue = this.broker.queue(queueName);
    if (!queue) throw new UnroutableError('', queueName);
    return queue.purge();
  }

  describe(): string {
    return 'memory (this process)';
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const unsubscribe of this.subscriptions) unsubscribe();
    this.subscriptions.clear();
    for (const consumer of this.consumers) consumer.closeConnection();
    this.consumers.clear();
    for (const fetcher of this.fetchers.values()) fetcher.closeConnection();
    this.fetchers.clear();
  }
}

/** What a {@link MemoryDelivery} settles through: the consumer or fetcher that holds it. */
interface DeliveryHolder {
  readonly queue: MemoryQueue;
  settled(delivery: MemoryDelivery): void;
  deadLetterQueue(): MemoryQueue;
}

/** A consumer and the deliveries it has not settled yet. */
class TransportConsumer implements MemoryConsumer, DeliveryHolder {
  unsettled = 0;
  cancelled = false;
  private readonly open = new Set<MemoryDelivery>();

  constructor(
    private readonly broker: MemoryBroker,
    readonly queue: MemoryQueue,
    private readonly handler: DeliveryHandler,
    public prefetch: number,
    readonly owner: object,
  ) {}

  deliver(stored: StoredMessage): void {
    const delivery = new MemoryDelivery(stored, this);
    this.open.add(delivery);
    this.handler(delivery);
  }

  settled(delivery: MemoryDelivery): void {
    this.open.delete(delivery);
    this.unsettled -= 1;
    this.queue.schedule();
  }

  deadLetterQueue(): MemoryQueue {
    return this.broker.declare(deadLetterQueueName(this.queue.name));
  }

  /** What a broker does when a connection drops: unsettled deliveries go back to the queue. */
  closeConnection(): void {
    this.queue.removeConsumer(this);
    for (const delivery of this.open) delivery.returnToQueue();
    this.open.clear();
  }
}

/** The messages of one queue taken by `fetch()` and not settled yet. */
class Fetcher implements DeliveryHolder {
  private readonly open = new Set<MemoryDelivery>();

  constructor(
    private readonly broker: MemoryBroker,
    readonly queue: MemoryQueue,
  ) {}

  hold(stored: StoredMessage): FetchedMessage {
    const delivery = new MemoryDelivery(stored, this);
    this.open.add(delivery);
    return Object.assign(delivery, { remaining: this.queue.size });
  }

  settled(delivery: MemoryDelivery): void {
    this.open.delete(delivery);
  }

  deadLetterQueue(): MemoryQueue {
    return this.broker.declare(deadLetterQueueName(this.queue.name));
  }

  /** Puts every held message back where it was: the last taken goes back first. */
  closeConnection(): void {
    for (const delivery of [...this.open].reverse()) delivery.returnToQueue();
    this.open.clear();
  }
}

class MemoryDelivery implements Delivery {
  readonly message: TransportMessage;
  readonly redelivered: boolean;
  readonly queue: string;
  private settled = false;

  constructor(
    private readonly stored: StoredMessage,
    private readonly consumer: DeliveryHolder,
  ) {
    this.message = copyMessage(stored.message);
    this.redelivered = stored.redelivered;
    this.queue = consumer.queue.name;
  }

  async ack(): Promise<void> {
    this.settle();
  }

  async requeue(): Promise<void> {
    this.settle();
    this.consumer.queue.enqueue({ message: this.stored.message, redelivered: true }, true);
  }

  async deadLetter(reason: string, headers: Record<string, unknown> = {}): Promise<void> {
    this.settle();
    const message = copyMessage(this.stored.message);
    Object.assign(message.headers, structuredClone(headers));
    message.headers[DEAD_LETTER_REASON_HEADER] = reason;
    message.headers[DEAD_LETTERED_AT_HEADER] = Date.now();
    this.consumer.deadLetterQueue().enqueue({ message, redelivered: false });
  }

  returnToQueue(): void {
    if (this.settled) return;
    this.settled = true;
    this.consumer.queue.enqueue({ message: this.stored.message, redelivered: true }, true);
  }

  private settle(): void {
    if (this.settled) {
      throw new Error(`delivery from queue '${this.queue}' was already settled`);
    }
    this.settled = true;
    this.consumer.settled(this);
  }
}

const check = new OptionChecker('MemoryTransport');

function copyMessage(message: TransportMessage): TransportMessage {
  return {
    headers: structuredClone(message.headers),
    properties: { ...message.properties },
    body: Buffer.from(message.body),
  };
}
