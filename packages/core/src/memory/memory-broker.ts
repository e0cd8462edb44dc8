import type {
  ExchangeDeclaration,
  MessageProperties,
  TransportMessage,
} from '../transport/transport';
import { matchesTopic } from './topic-pattern';

/** A message held by the in-memory broker. */
export interface StoredMessage {
  message: TransportMessage;
  redelivered: boolean;
}

/** One consumer registered on a {@link MemoryQueue}. */
export interface MemoryConsumer {
  readonly owner: object;
  /** Can change at run time (a worker's pool grows or shrinks). */
  prefetch: number;
  unsettled: number;
  deliver(stored: StoredMessage): void;
}

/** A queue of the in-memory broker: FIFO, or by priority when `maxPriority` is set. */
export class MemoryQueue {
  private readonly messages: StoredMessage[] = [];
  private readonly consumers: MemoryConsumer[] = [];
  private next = 0;
  private scheduled = false;

  constructor(
    readonly name: string,
    readonly maxPriority: number | undefined,
  ) {}

  get size(): number {
    return this.messages.length;
  }

  /** Snapshot of waiting messages, for inspection in tests and tools. */
  peek(): readonly StoredMessage[] {
    return [...this.messages];
  }

  enqueue(stored: StoredMessage, atFront = false): void {
    if (this.maxPriority === undefined) {
      if (atFront) this.messages.unshift(stored);
      else this.messages.push(stored);
    } else {
      const priority = this.priorityOf(stored.message.properties);
      // Higher priority first; equal priorities keep arrival order (requeued ones go first).
      let index = this.messages.findIndex((m) => {
        const p = this.priorityOf(m.message.properties);
        return atFront ? p <= priority : p < priority;
      });
      if (index === -1) index = this.messages.length;
      this.messages.splice(index, 0, stored);
    }
    this.schedule();
  }

  /** Removes and returns the next message, for a reader that holds it without a consumer. */
  take(): StoredMessage | undefined {
    return this.messages.shift();
  }

  addConsumer(consumer: MemoryConsumer): void {
    this.consumers.push(consumer);
    this.schedule();
  }

  removeConsumer(consumer: MemoryConsumer): void {
    const index = this.consumers.indexOf(consumer);
    if (index >= 0) this.consumers.splice(index, 1);
  }

  /** Called when a consumer settles a delivery and may take another. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // Deliver asynchronously, as a network broker would, so publishers never re-enter handlers.
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  /** Consumers attached now. */
  get consumerCount(): number {
    return this.consumers.length;
  }

  purge(): number {
    const count = this.messages.length;
    this.messages.length = 0;
    return count;
  }

  private dispatch(): void {
    while (this.messages.length > 0) {
      const consumer = this.nextConsumerWithRoom();
      if (!consumer) return;
      const stored = this.messages.shift()!;
      consumer.unsettled += 1;
      consumer.deliver(stored);
    }
  }

  private nextConsumerWithRoom(): MemoryConsumer | undefined {
    for (let i = 0; i < this.consumers.length; i += 1) {
      const consumer = this.consumers[(this.next + i) % this.consumers.length]!;
      if (consumer.unsettled < consumer.prefetch) {
        this.next = (this.next + i + 1) % this.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }

  private priorityOf(properties: MessageProperties): number {
    return Math.min(properties.priority ?? 0, this.maxPriority ?? 0);
  }
}

/** An exchange of the in-memory broker and what is bound to it. */
interface MemoryExchange {
  declaration: ExchangeDeclaration;
  bindings: Set<{ routingKey: string; deliver: (message: TransportMessage) => void }>;
}

/**
 * The state of an in-memory broker: its queues and delayed messages. Several
 * {@link MemoryTransport}s may share one broker, the way several connections share a RabbitMQ
 * server; each transport's `close()` then returns only its own unsettled deliveries.
 */
export class MemoryBroker {
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly fanouts = new Map<string, Set<(message: TransportMessage) => void>>();
  private readonly exchanges = new Map<string, MemoryExchange>();

  /** Declares an exchange; a redeclaration with other settings is refused, as RabbitMQ does. */
  declareExchange(declaration: ExchangeDeclaration): void {
    const existing = this.exchanges.get(declaration.name);
    if (!existing) {
      this.exchanges.set(declaration.name, {
        declaration: { ...declaration },
        bindings: new Set(),
      });
    } else if (
      existing.declaration.type !== declaration.type ||
      (existing.declaration.durable ?? false) !== (declaration.durable ?? false)
    ) {
      throw new Error(`PRECONDITION_FAILED - inequivalent arg for exchange '${declaration.name}'`);
    }
  }

  /** Routes a copy to every binding that matches, asynchronously; false if no such exchange. */
  publishToExchange(exchange: string, routingKey: string, message: TransportMessage): boolean {
    const target = this.exchanges.get(exchange);
    if (!target) return false;
    const type = target.declaration.type;
    for (const binding of target.bindings) {
      const routed =
        type === 'fanout' ||
        (type === 'direct'
          ? binding.routingKey === routingKey
          : matchesTopic(binding.routingKey, routingKey));
      if (!routed) continue;
      const copy = {
        headers: structuredClone(message.headers),
        properties: { ...message.properties },
        body: Buffer.from(message.body),
      };
      setImmediate(() => binding.deliver(copy));
    }
    return true;
  }

  /** Binds a subscriber to a declared exchange; returns the unbind function. */
  bindExchange(
    exchange: string,
    routingKey: string,
    deliver: (message: TransportMessage) => void,
  ): () => void {
    const target = this.exchanges.get(exchange);
    if (!target) throw new Error(`NOT_FOUND - no exchange '${exchange}'`);
    const binding = { routingKey, deliver };
    target.bindings.add(binding);
    return () => target.bindings.delete(binding);
  }

  /** Delivers a copy to every subscriber of a fanout exchange, asynchronously. */
  broadcast(exchange: string, message: TransportMessage): void {
    for (const subscriber of this.fanouts.get(exchange) ?? []) {
      const copy = {
        headers: structuredClone(message.headers),
        properties: { ...message.properties },
        body: Buffer.from(message.body),
      };
      setImmediate(() => subscriber(copy));
    }
  }

  /** Subscribes to a fanout exchange; returns the unsubscribe function. */
  subscribe(exchange: string, subscriber: (message: TransportMessage) => void): () => void {
    let subscribers = this.fanouts.get(exchange);
    if (!subscribers) {
      subscribers = new Set();
      this.fanouts.set(exchange, subscribers);
    }
    subscribers.add(subscriber);
    return () => subscribers!.delete(subscriber);
  }

  queue(name: string): MemoryQueue | undefined {
    return this.queues.get(name);
  }

  declare(name: string, maxPriority?: number): MemoryQueue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new MemoryQueue(name, maxPriority);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Runs `release` at `at` (epoch ms). Timers do not keep the process alive. */
  delay(at: number, release: () => void): void {
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        release();
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    this.timers.add(timer);
  }

  /** Number of messages waiting for their delivery time. */
  get delayedCount(): number {
    return this.timers.size;
  }
}
