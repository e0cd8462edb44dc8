/**
 * The contract between core and a message broker. Core speaks only this interface; each broker
 * package (`@conveyor/amqp-transport`, the in-memory default) implements it, and every
 * implementation must pass the transport conformance suite (`@conveyor/core/testing`).
 */

/** AMQP-style basic properties of a message. */
export interface MessageProperties {
  contentType?: string;
  contentEncoding?: string;
  correlationId?: string;
  replyTo?: string;
  /** 0-255, honoured by queues declared with `maxPriority`. */
  priority?: number;
  /** 2 = persistent (the default for tasks), 1 = transient. */
  deliveryMode?: number;
  messageId?: string;
}

/** Header values a transport can carry: JSON-like values. */
export type HeaderValue =
  string | number | boolean | null | undefined | HeaderValue[] | { [key: string]: HeaderValue };

/** A message as the broker carries it: opaque body, headers and properties. */
export interface TransportMessage {
  headers: Record<string, unknown>;
  properties: MessageProperties;
  body: Buffer;
}

/** A queue to declare. Declaration is idempotent. */
export interface QueueDeclaration {
  /** Queue name; also the routing key tasks are published with. */
  name: string;
  /** Highest priority the queue honours (1-255); omit for a plain FIFO queue. */
  maxPriority?: number;
  /**
   * Broker-specific queue kind. The AMQP transport knows `classic` and `quorum`; the memory
   * transport ignores it.
   */
  queueType?: 'classic' | 'quorum';
}

/** Where and how to publish. */
export interface PublishOptions {
  /** The task queue the message is for. */
  queue: string;
  /**
   * Do not deliver before this time (epoch milliseconds). The message waits in the broker, not
   * in any worker's memory. A time in the past or now delivers at once. A transport whose delays
   * have a limited reach (the AMQP transport: about 49.7 days) delivers a later message at that
   * reach, early; the worker then finds the task's eta still ahead and delays it again.
   */
  deliverAt?: number;
}

/** One message handed to a consumer. It must be settled exactly once. */
export interface Delivery {
  readonly message: TransportMessage;
  /** The queue it came from. */
  readonly queue: string;
  /** True when the broker delivered it before and it was not acknowledged. */
  readonly redelivered: boolean;
  /** Removes the message from the queue for good. */
  ack(): Promise<void>;
  /** Gives the message back to its queue, to be delivered again (to this or another consumer). */
  requeue(): Promise<void>;
  /**
   * Moves the message to its queue's dead-letter queue (`<queue>.dead`) with `reason` in the
   * {@link DEAD_LETTER_REASON_HEADER} header, and removes it from the queue. Never redelivered.
   */
  deadLetter(reason: string): Promise<void>;
}

/** Options for a consumer. */
export interface ConsumeOptions {
  /** Most unsettled deliveries this consumer holds at once. */
  prefetch: number;
}

/** A running consumer. */
export interface Consumer {
  /**
   * Stops new deliveries. Deliveries already handed over stay valid and must still be settled.
   */
  cancel(): Promise<void>;
  /**
   * Optional capability `prefetch`: changes how many unsettled deliveries the consumer holds,
   * at run time (a worker's pool grows or shrinks).
   */
  setPrefetch?(prefetch: number): Promise<void>;
}

/** An exchange to declare. RabbitMQ refuses a redeclaration with other settings. */
export interface ExchangeDeclaration {
  name: string;
  type: 'direct' | 'topic' | 'fanout';
  /** kombu declares `celeryev` durable and the mailbox exchanges non-durable. */
  durable: boolean;
}

/**
 * A queue of its own bound to an exchange, for transient traffic (events, control replies): not
 * durable, deleted when its consumer goes, messages not acknowledged.
 */
export interface ExchangeSubscription {
  exchange: ExchangeDeclaration;
  /** Binding key: a topic pattern (`#`), a direct routing key; ignored by fanout exchanges. */
  routingKey: string;
  /** The queue's name; omitted, the broker names it. */
  queue?: string;
  /** How long a message may wait in the queue (`x-message-ttl`), in ms. */
  messageTtlMs?: number;
  /** How long the queue outlives its last consumer (`x-expires`), in ms. */
  expiresMs?: number;
}

/** Handler for deliveries; exceptions it throws are the caller's bug, so it must not throw. */
export type DeliveryHandler = (delivery: Delivery) => void;

/** A message broker. */
export interface Transport {
  /** Connects (idempotent). Operations connect on first use, so calling it is optional. */
  connect(): Promise<void>;
  /** Declares a task queue and what it needs (its dead-letter queue, delay routing). Idempotent. */
  declareQueue(queue: QueueDeclaration): Promise<void>;
  /**
   * Publishes a message to a declared queue. Resolves only once the broker has taken
   * responsibility for it (a publisher confirm); rejects with a `ConnectionError` if that cannot
   * be known within the transport's bound, or an `UnroutableError` if no queue took it.
   */
  publish(message: TransportMessage, options: PublishOptions): Promise<void>;
  /** Starts consuming a declared queue. */
  consume(queue: string, handler: DeliveryHandler, options: ConsumeOptions): Promise<Consumer>;
  /**
   * Publishes a control message to every subscriber of a fanout `exchange` (Celery's
   * `celery.pidbox` for revokes). Transient: subscribers that are not connected miss it.
   */
  broadcast(exchange: string, message: TransportMessage): Promise<void>;
  /** Receives the control messages broadcast on `exchange` from now on. */
  subscribeBroadcast(
    exchange: string,
    handler: (message: TransportMessage) => void,
  ): Promise<Consumer>;
  /**
   * Optional capability `exchanges` (Celery events and remote-control replies). Declares an
   * exchange, idempotently; a transport that publishes with {@link Transport.publishTransient}
   * declares it again by itself after a reconnect.
   */
  declareExchange?(exchange: ExchangeDeclaration): Promise<void>;
  /**
   * Optional capability `exchanges`. Publishes a transient message to a declared exchange with a
   * routing key, fire-and-forget: no confirm, never waits. Returns false when the message was
   * dropped (the connection is down, or the broker is pushing back), true when it was handed to
   * the connection, which still does not mean it arrived.
   */
  publishTransient?(exchange: string, routingKey: string, message: TransportMessage): boolean;
  /** Optional capability `exchanges`. Consumes a queue of its own bound to an exchange. */
  subscribeExchange?(
    subscription: ExchangeSubscription,
    handler: (message: TransportMessage) => void,
  ): Promise<Consumer>;
  /**
   * Where this broker is, for logs and the worker's startup banner: its URL with any password
   * masked (`amqp://guest:***@host:5672/`). Optional: without it the class name is shown.
   */
  describe?(): string;
  /**
   * Closes consumers and connections. Unsettled deliveries return to their queues, as they do
   * when a broker connection closes.
   */
  close(): Promise<void>;
}

/** Header that carries why a message was dead-lettered. */
export const DEAD_LETTER_REASON_HEADER = 'x-conveyor-dead-letter-reason';

/** Name of the dead-letter queue of a task queue. */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.dead`;
}
