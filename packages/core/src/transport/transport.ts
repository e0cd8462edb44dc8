/**
 * The contract between core and a message broker. Core speaks only this interface; each broker
 * package (`@conveyor/amqp-transport`, the in-memory default) implements it, and every
 * implementation must pass the transport conformance suite (`@conveyor/core/testing`).
 *
 * **Optional capabilities.** What not every broker can offer is grouped into named capabilities
 * ({@link TRANSPORT_CAPABILITIES}), each a set of optional members of {@link Transport}. A
 * transport declares a capability by implementing all of its members (implementing some of them
 * declares nothing). A feature that needs one calls `requireCapability(transport, name, feature,
 * offeredBy)` when it starts, which returns the transport typed with those members present or
 * throws a `ConfigError` naming the capability, the feature and the package that offers it; it
 * never finds out halfway through a run. The conformance suite runs a capability's cases only for
 * a fixture that lists it, and fails when a fixture's list and its transport's members disagree.
 * A new capability is added here: its optional members with TSDoc, its entry in
 * {@link TRANSPORT_CAPABILITIES}, and its conformance cases behind the same gate.
 */

import type { ConnectionError } from '../errors';

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
   * {@link DEAD_LETTER_REASON_HEADER} header (and `headers`, if given, added to the copy), and
   * removes it from the queue. Never redelivered.
   */
  deadLetter(reason: string, headers?: Record<string, unknown>): Promise<void>;
}

/**
 * A message taken from a queue by {@link Transport.fetch}, without a consumer. The caller holds it
 * until it settles it (`ack()` removes it, `requeue()` gives it back unchanged); a held message is
 * not delivered to anyone else, and returns to its queue if the transport closes or loses its
 * connection first, so reading loses nothing.
 */
export interface FetchedMessage extends Delivery {
  /** Messages still ready in the queue after this one was taken, as the broker counted them. */
  readonly remaining: number;
}

/** Options for a consumer. */
export interface ConsumeOptions {
  /** Most unsettled deliveries this consumer holds at once. */
  prefetch: number;
}

/** A running consumer. */
export interface Consumer {
  /**
   * Stops new deliveries from the call on: the handler gets none after it, even before the
   * promise resolves (what a broker still sends before it confirms the cancel, the transport
   * gives back itself). Deliveries already handed over stay valid and must still be settled.
   */
  cancel(): Promise<void>;
}

/** Handler for deliveries; exceptions it throws are the caller's bug, so it must not throw. */
export type DeliveryHandler = (delivery: Delivery) => void;

/** An exchange to declare (capability `exchanges`). Declaration is idempotent. */
export interface ExchangeDeclaration {
  name: string;
  /** `fanout` copies to every bound queue; `topic` routes by pattern; `direct` by exact key. */
  type: 'fanout' | 'topic' | 'direct';
  /**
   * Survives a broker restart. kombu declares `celeryev` durable and its mailbox exchanges
   * (`celery.pidbox`, `reply.celery.pidbox`) not, none of them auto-deleted; RabbitMQ refuses a
   * redeclaration that differs, so each must be declared as kombu declares it.
   * @defaultValue false
   */
  durable?: boolean;
}

/**
 * The queue of a {@link Transport.subscribeExchange} subscription: not durable, deleted with its
 * consumer, messages not acknowledged.
 */
export interface ExchangeQueueOptions {
  /** Its name (Celery's `celeryev.<uuid>`, `<uuid>.reply.celery.pidbox`); omitted, the broker names it. */
  queue?: string;
  /** How long a message may wait in it (`x-message-ttl`), in ms. */
  messageTtlMs?: number;
  /** How long it outlives its last consumer (`x-expires`), in ms. */
  expiresMs?: number;
}

/** Messages per second through a queue, as the broker samples them. */
export interface QueueRates {
  /** Messages published to the queue. */
  published: number;
  /** Messages delivered to consumers (or fetched). */
  delivered: number;
  /** Deliveries acknowledged. */
  acked: number;
}

/** What {@link Transport.queueStats} reports of a queue (capability `queueAdmin`). */
export interface QueueStats {
  /** Messages ready for delivery (not counting those delivered and not yet settled). */
  ready: number;
  /** Consumers attached now. */
  consumers: number;
  /** Messages delivered and not yet settled; absent when the transport cannot tell. */
  unacked?: number;
  /** Sampled message rates; absent when the transport cannot tell. */
  rates?: QueueRates;
}

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
   * Where this broker is, for logs and the worker's startup banner: its URL with its password
   * masked (`amqp://guest:***@host:5672/`). Optional: without it the class name is shown.
   */
  describe?(): string;
  /**
   * Adds a listener for failures the transport meets in the background and recovers from by
   * itself (lost connections and channels, reconnects), as `ConnectionError`s without credentials; returns a function that removes
   * it. Optional. A worker listens while it runs and reports them as its `worker-error` event.
   * Plugins built on `@conveyor/core/plugin` implement it with `BackgroundErrors`, beside their
   * `onError` option.
   */
  onBackgroundError?(listener: (error: ConnectionError) => void): () => void;
  /**
   * Closes consumers and connections. Unsettled deliveries return to their queues, as they do
   * when a broker connection closes.
   */
  close(): Promise<void>;

  // Capability `exchanges`: named exchanges with routing keys, for Celery events (a topic
  // exchange `celeryev`, routing keys like `task.succeeded`) and remote control replies (the
  // direct exchange `reply.celery.pidbox`, routed by the caller's reply queue name).

  /** Declares an exchange (idempotent). Capability `exchanges`. */
  declareExchange?(exchange: ExchangeDeclaration): Promise<void>;
  /**
   * Publishes to a declared exchange with a routing key; it goes to the queues bound to it with
   * a matching key, and to none (without error) when there are none. Transient messages: no
   * publisher confirm is awaited, and a message no queue takes is dropped, as Celery's events
   * and replies are. Fire-and-forget: it never waits for the broker; it rejects at once with a
   * `ConnectionError` when the message cannot go now (no connection, the broker pushing back,
   * an exchange not declared through this transport), and the caller drops it. Capability
   * `exchanges`.
   */
  publishToExchange?(
    exchange: string,
    routingKey: string,
    message: TransportMessage,
  ): Promise<void>;
  /**
   * Receives what is published to `exchange` (declared first with `declareExchange`) with a key
   * matching `bindingKey` from now on, through a queue of its own deleted when the returned
   * consumer is cancelled or the connection closes (`options` name it and give it Celery's TTL
   * and expiry). For a fanout exchange the key is ignored. Capability `exchanges`.
   */
  subscribeExchange?(
    exchange: string,
    bindingKey: string,
    handler: (message: TransportMessage) => void,
    options?: ExchangeQueueOptions,
  ): Promise<Consumer>;

  // Capability `queueAdmin`: what the broker knows about a task queue.

  /**
   * Counts a declared queue's ready messages and consumers (and, where the broker tells, its
   * unsettled messages and rates). Reads only. Rejects with `UnroutableError` for a queue that
   * does not exist. Capability `queueAdmin`.
   */
  queueStats?(queue: string): Promise<QueueStats>;
  /**
   * Removes every ready message of a declared queue (not those delivered and unsettled) and
   * resolves with how many. Rejects with `UnroutableError` for a queue that does not exist.
   * Capability `queueAdmin`.
   */
  purgeQueue?(queue: string): Promise<number>;

  // Capability `delayStats`.

  /**
   * Messages waiting in the transport's delayed delivery (countdowns, etas, retries), every
   * queue together: the delay mechanism is shared. Capability `delayStats`.
   */
  delayedCount?(): Promise<number>;

  // Capability `prefetch`.

  /**
   * Changes how many unsettled deliveries a consumer this transport started may hold, from now
   * on (Celery's remote `basic_qos`); deliveries already held stay valid. Capability `prefetch`.
   */
  setPrefetch?(consumer: Consumer, prefetch: number): Promise<void>;

  // Capability `queueAccess`: taking messages from, and putting them into, any queue by name,
  // without a consumer or a task exchange (what `DeadLetters` does with `<queue>.dead`).

  /**
   * Takes the next ready message of `queue` (any queue, such as a dead-letter queue), or
   * undefined when none is ready. The message is held, not removed, until settled; messages held
   * at once are not bounded by any prefetch. Rejects with `UnroutableError` if the queue does not
   * exist. Capability `queueAccess`.
   */
  fetch?(queue: string): Promise<FetchedMessage | undefined>;
  /**
   * Publishes a message straight into the queue named `queue` (RabbitMQ's default exchange),
   * whether or not it is a task queue with an exchange of its own. Resolves on the broker's
   * confirm, like {@link Transport.publish}; rejects with `UnroutableError` if no such queue
   * exists. Capability `queueAccess`.
   */
  publishToQueue?(queue: string, message: TransportMessage): Promise<void>;

  // Capability `reconnectNotice`.

  /**
   * Calls `listener` each time the transport has connected again after losing a broker
   * connection, with the connection's role (`publisher`, `consumer`); the worker turns it into
   * its `broker-reconnected` event (metrics). Returns a function that removes the listener.
   * Capability `reconnectNotice`.
   */
  onReconnected?(listener: (connection: string) => void): () => void;
}

/**
 * The optional capabilities of a {@link Transport}: each name with the members that make it up.
 * A transport has a capability when it implements every one of them.
 */
export const TRANSPORT_CAPABILITIES = {
  exchanges: ['declareExchange', 'publishToExchange', 'subscribeExchange'],
  queueAdmin: ['queueStats', 'purgeQueue'],
  prefetch: ['setPrefetch'],
  queueAccess: ['fetch', 'publishToQueue'],
  delayStats: ['delayedCount'],
  reconnectNotice: ['onReconnected'],
} as const satisfies Record<string, ReadonlyArray<keyof Transport>>;

/** The name of an optional capability of a {@link Transport}. */
export type TransportCapability = keyof typeof TRANSPORT_CAPABILITIES;

/** Header that carries why a message was dead-lettered. */
export const DEAD_LETTER_REASON_HEADER = 'x-conveyor-dead-letter-reason';

/** Header that carries when a message was dead-lettered by Conveyor (epoch milliseconds). */
export const DEAD_LETTERED_AT_HEADER = 'x-conveyor-dead-lettered-at';

/**
 * Header that counts the deliveries of a task message that ended without completing (the worker
 * died or gave the message back), on queues whose broker counts nothing itself. A worker that
 * receives the message redelivered publishes a copy with the count raised and acks the original.
 */
export const DELIVERY_COUNT_HEADER = 'x-conveyor-delivery-count';

/**
 * Header of a message a worker's rate limiter re-delayed: the slot (epoch ms) it reserved there.
 * It holds for that delay only: a retry or a replay leaves it behind.
 */
export const RATE_SLOT_HEADER = 'x-conveyor-rate-slot';

/**
 * Header a RabbitMQ quorum queue puts on a message it delivers again: how many deliveries of it
 * were returned before (the count its `delivery-limit` is checked against).
 */
export const BROKER_DELIVERY_COUNT_HEADER = 'x-delivery-count';

/** Headers RabbitMQ adds to a message it dead-letters (the record of each dead-lettering). */
export const BROKER_DEAD_LETTERING_HEADERS: readonly string[] = [
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

/** Name of the dead-letter queue of a task queue. */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.dead`;
}
