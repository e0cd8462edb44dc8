import type { ChannelModel } from 'amqplib';
import {
  BackgroundErrors,
  ConfigError,
  ConnectionError,
  ConveyorError,
  OptionChecker,
  deadLetterQueueName,
  warnDeprecatedOption,
  type BackgroundErrorHandler,
  type Redactor,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type ExchangeDeclaration,
  type ExchangeQueueOptions,
  type FetchedMessage,
  type PublishOptions,
  type QueueDeclaration,
  type QueueStats,
  type Transport,
  type TransportMessage,
} from '@conveyor/core/plugin';
import { AmqpConsumer, checkPrefetch } from './amqp-consumer';
import { BROADCAST_EXCHANGE_OPTIONS, ExchangeSubscriber } from './exchange-subscriber';
import type { AmqpTransportLogger, AmqpTransportOptions } from './amqp-transport-options';
import { isRefusal, messageOf } from './broker-errors';
import { parseBrokerUrls, type BrokerUrl } from './broker-url';
import { ConnectionManager } from './connection-manager';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_CONNECTION_NAME,
  DEFAULT_DELAY_NAMESPACE,
  DEFAULT_HEARTBEAT_SECONDS,
  DEFAULT_MAX_UNCONFIRMED,
  DEFAULT_PUBLISH_TIMEOUT_MS,
  DEFAULT_QUEUE_TYPE,
  DEFAULT_RECONNECT_INITIAL_DELAY_MS,
  DEFAULT_RECONNECT_JITTER,
  DEFAULT_RECONNECT_MAX_DELAY_MS,
  DEFAULT_RECONNECT_MULTIPLIER,
  DEFAULT_URL,
} from './defaults';
import { DelayTopology, MAX_DELAY_MS } from './delayed-delivery';
import { publishOptions } from './message-mapping';
import { ManagementApi } from './management-api';
import { Publisher } from './publisher';
import { QueueInspector } from './queue-inspector';
import { QueueReader } from './queue-reader';
import type { ReconnectSettings } from './reconnect-backoff';
import { Topology } from './topology';
import { TransientPublisher } from './transient-publisher';

/** The connections and channels of one open period of the transport (until `close()`). */
interface Session {
  publisherConnection: ConnectionManager;
  consumerConnection: ConnectionManager;
  publisher: Publisher;
  reader: QueueReader;
  consumers: Set<AmqpConsumer>;
  subscribers: Set<ExchangeSubscriber>;
  transient: TransientPublisher;
}

/**
 * The RabbitMQ transport (AMQP 0-9-1 through amqplib). See the package README for the
 * topology it declares, how delayed delivery works without a plugin, how it recovers from lost
 * connections, and when a message can be delivered twice.
 */
export class AmqpTransport implements Transport {
  private readonly urls: readonly BrokerUrl[];
  private readonly redactor: Redactor;
  private readonly connectionName: string;
  private readonly publishTimeoutMs: number;
  private readonly maxUnconfirmed: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnect: ReconnectSettings;
  private readonly errors: BackgroundErrors;
  /** What the parts report to: the background-error hook, with credentials taken out. */
  private readonly logger: AmqpTransportLogger = {
    warn: (message) => this.errors.report(new ConnectionError(this.redactor.redact(message))),
  };
  private readonly topology: Topology;
  private readonly inspector: QueueInspector;
  private readonly fanouts = new Set<string>();
  private readonly reconnectListeners = new Set<(connection: string) => void>();
  /** Exchanges declared through this transport, so subscriptions can declare them again. */
  private readonly exchanges = new Map<string, ExchangeDeclaration>();
  private session?: Session;

  constructor(options: AmqpTransportOptions = {}) {
    const numbers = check.numbers(options, {
      heartbeatSeconds: { default: DEFAULT_HEARTBEAT_SECONDS, min: 0 },
      publishTimeoutMs: { default: DEFAULT_PUBLISH_TIMEOUT_MS, min: 1 },
      maxUnconfirmed: { default: DEFAULT_MAX_UNCONFIRMED, min: 1, integer: true },
      connectTimeoutMs: { default: DEFAULT_CONNECT_TIMEOUT_MS, min: 1 },
    });
    ({ urls: this.urls, redactor: this.redactor } = parseBrokerUrls(
      options.url ?? DEFAULT_URL,
      numbers.heartbeatSeconds,
    ));
    this.connectionName = options.connectionName ?? DEFAULT_CONNECTION_NAME;
    this.publishTimeoutMs = numbers.publishTimeoutMs;
    this.maxUnconfirmed = numbers.maxUnconfirmed;
    this.connectTimeoutMs = numbers.connectTimeoutMs;
    this.reconnect = check.numbers(
      options.reconnect ?? {},
      {
        initialDelayMs: { default: DEFAULT_RECONNECT_INITIAL_DELAY_MS, min: 0 },
        maxDelayMs: { default: DEFAULT_RECONNECT_MAX_DELAY_MS, min: 0 },
        multiplier: { default: DEFAULT_RECONNECT_MULTIPLIER, min: 1 },
        jitter: { default: DEFAULT_RECONNECT_JITTER, min: 0, max: 1 },
      },
      'reconnect.',
    );
    const queueType = check.oneOf(
      'queueType',
      options.queueType ?? DEFAULT_QUEUE_TYPE,
      QUEUE_TYPES,
    );
    const namespace = check.string(
      'delayNamespace',
      options.delayNamespace ?? DEFAULT_DELAY_NAMESPACE,
      {
        nonEmpty: true,
      },
    );
    this.errors = new BackgroundErrors('amqp', onErrorOf(options));
    this.topology = new Topology(new DelayTopology(namespace), queueType);
    const management =
      options.managementUrl === false
        ? undefined
        : ManagementApi.forBroker(this.urls[0]!.href, options.managementUrl);
    this.inspector = new QueueInspector(this.topology.delay, management);
  }

  /**
   * Adds a listener for the failures this transport meets in the background, besides its `onError`
   * option: how a worker running on it reports them as its `worker-error` event. Returns a
   * function that removes the listener.
   */
  onBackgroundError(listener: BackgroundErrorHandler): () => void {
    return this.errors.listen(listener);
  }

  async connect(): Promise<void> {
    await this.open().publisherConnection.connection(this.connectTimeoutMs);
  }

  async declareQueue(declaration: QueueDeclaration): Promise<void> {
    if (!declaration.name) throw new ConfigError('a queue needs a name');
    if (
      declaration.maxPriority !== undefined &&
      !(
        Number.isInteger(declaration.maxPriority) &&
        declaration.maxPriority >= 1 &&
        declaration.maxPriority <= 255
      )
    ) {
      throw new ConfigError(
        `queue '${declaration.name}': maxPriority must be an integer from 1 to 255`,
      );
    }
    if (declaration.queueType !== undefined)
      check.oneOf(`queue '${declaration.name}' queueType`, declaration.queueType, QUEUE_TYPES);
    await this.withPublisherConnection(this.connectTimeoutMs, (model) =>
      this.topology.declareQueue(model, declaration),
    );
  }

  async publish(message: TransportMessage, options: PublishOptions): Promise<void> {
    const queue = options.queue;
    const session = this.open();
    if (options.deliverAt === undefined || options.deliverAt <= Date.now()) {
      if (!this.topology.hasExchange(queue)) {
        await this.withPublisherConnection(this.publishTimeoutMs, (model) =>
          this.topology.checkExchange(model, queue),
        );
      }
      await session.publisher.publish(queue, queue, message.body, publishOptions(message));
      return;
    }
    const delay = this.topology.delay;
    delay.checkQueueName(queue);
    if (!this.topology.hasDelayBinding(queue)) {
      await this.withPublisherConnection(this.publishTimeoutMs, (model) =>
        this.topology.bindForDelay(model, queue),
      );
    }
    // Past the reach of the levels (about 49.7 days) the message waits as long as they allow and
    // arrives early; a Conveyor worker sees its eta still ahead and delays it again.
    const delayMs = Math.min(Math.ceil(options.deliverAt - Date.now()), MAX_DELAY_MS);
    if (delayMs <= 0) {
      // Due while we were checking the route.
      await session.publisher.publish(queue, queue, message.body, publishOptions(message));
      return;
    }
    const route = delay.route(delayMs, queue);
    await session.publisher.publish(
      route.exchange,
      route.routingKey,
      message.body,
      publishOptions(message),
    );
  }

  async consume(
    queue: string,
    handler: DeliveryHandler,
    options: ConsumeOptions,
  ): Promise<Consumer> {
    const prefetch = checkPrefetch(queue, options.prefetch);
    const session = this.open();
    const consumer = new AmqpConsumer(queue, handler, prefetch, {
      connection: session.consumerConnection,
      publishDeadLetter: (copy, from) => this.publishToQueue(deadLetterQueueName(from), copy),
      isDelayExchange: (name) => this.topology.delay.isDelayExchange(name),
      reconnect: this.reconnect,
      logger: this.logger,
      onFinished: (c) => session.consumers.delete(c),
    });
    // Added once started, so a reconnect listener cannot open a second channel beside start();
    // a connection lost in between is noticed by the consumer's own channel close.
    await consumer.start(this.connectTimeoutMs);
    session.consumers.add(consumer);
    return consumer;
  }

  /**
   * Publishes through the default exchange, with the queue's name as routing key: it reaches the
   * queue of that name whatever exchanges it is bound to.
   */
  async publishToQueue(queue: string, message: TransportMessage): Promise<void> {
    await this.open().publisher.publish('', queue, message.body, publishOptions(message));
  }

  /**
   * basic.get on a channel of the consumer connection, kept open while messages are held (see
   * {@link QueueReader}).
   */
  async fetch(queue: string): Promise<FetchedMessage | undefined> {
    return this.open().reader.fetch(queue);
  }

  /**
   * Publishes to a non-durable fanout exchange (declared once, as kombu declares
   * `celery.pidbox`). Not mandatory: a broadcast nobody listens to is simply dropped.
   */
  async broadcast(exchange: string, message: TransportMessage): Promise<void> {
    const session = this.open();
    if (!this.fanouts.has(exchange)) {
      await this.withPublisherConnection(this.publishTimeoutMs, async (model) => {
        const channel = await model.createChannel();
        try {
          await channel.assertExchange(exchange, 'fanout', BROADCAST_EXCHANGE_OPTIONS);
        } finally {
          await channel.close().catch(() => undefined);
        }
      });
      this.fanouts.add(exchange);
    }
    await session.publisher.publish(exchange, '', message.body, {
      ...publishOptions(message),
      mandatory: false,
    });
  }

  subscribeBroadcast(
    exchange: string,
    handler: (message: TransportMessage) => void,
  ): Promise<Consumer> {
    this.exchanges.set(exchange, { name: exchange, type: 'fanout', durable: false });
    return this.subscribeExchange(exchange, '', handler);
  }

  /**
   * Declares an exchange (durable or not, never auto-deleted, as kombu declares its exchanges)
   * on the transient publishing channel, which declares it again after a reconnect.
   */
  async declareExchange(exchange: ExchangeDeclaration): Promise<void> {
    if (!exchange.name) throw new ConfigError('an exchange needs a name');
    this.exchanges.set(exchange.name, exchange);
    await this.open().transient.declare(exchange, this.connectTimeoutMs);
  }

  /**
   * Fire-and-forget: written on a channel of its own without confirms, never waiting. Rejects
   * at once while the connection is down, its write buffer is full (the broker is pushing back)
   * or the exchange was not declared here.
   */
  async publishToExchange(
    exchange: string,
    routingKey: string,
    message: TransportMessage,
  ): Promise<void> {
    if (!this.open().transient.publish(exchange, routingKey, message)) {
      throw new ConnectionError(`message to exchange '${exchange}' dropped: not writable now`);
    }
  }

  async subscribeExchange(
    exchange: string,
    bindingKey: string,
    handler: (message: TransportMessage) => void,
    options: ExchangeQueueOptions = {},
  ): Promise<Consumer> {
    const session = this.open();
    const subscriber = new ExchangeSubscriber(
      { exchange: this.exchanges.get(exchange) ?? exchange, bindingKey, ...options },
      handler,
      session.consumerConnection,
      this.logger,
      (s) => session.subscribers.delete(s),
    );
    await subscriber.start(this.connectTimeoutMs);
    session.subscribers.add(subscriber);
    return subscriber;
  }

  /** Changes a consumer's prefetch (basic.qos) at run time. */
  async setPrefetch(consumer: Consumer, prefetch: number): Promise<void> {
    if (!(consumer instanceof AmqpConsumer)) {
      throw new ConfigError('setPrefetch: not a consumer of this transport');
    }
    await consumer.setPrefetch(prefetch);
  }

  /** The broker URLs, passwords masked. */
  describe(): string {
    return this.urls.map((url) => url.redacted).join(', ');
  }

  /**
   * Ready messages and consumers by passive declare; unacked messages and rates from the
   * management API when it answers (see `managementUrl`).
   */
  async queueStats(queue: string): Promise<QueueStats> {
    return this.withPublisherConnection(this.connectTimeoutMs, (model) =>
      this.inspector.stats(model, queue),
    );
  }

  /** Messages waiting in this transport's delay levels (`delayNamespace`), all queues together. */
  async delayedCount(): Promise<number> {
    return this.withPublisherConnection(this.connectTimeoutMs, (model) =>
      this.inspector.delayedCount(model),
    );
  }

  async purgeQueue(name: string): Promise<number> {
    return this.withPublisherConnection(this.connectTimeoutMs, (model) =>
      this.inspector.purge(model, name),
    );
  }

  /**
   * Stops consumers and closes both connections; the broker puts unsettled deliveries back.
   * Publishes already under way are first allowed to finish (within `publishTimeoutMs`). The
   * transport can be used again afterwards: it reconnects on the next call.
   */
  async close(): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    // Each step runs whatever the one before did, so both connections always end.
    try {
      await Promise.all([...session.consumers].map((consumer) => consumer.stop()));
      await Promise.all([...session.subscribers].map((subscriber) => subscriber.cancel()));
      await session.transient.close();
      await session.reader.close();
    } finally {
      try {
        await session.consumerConnection.close();
        await session.publisher.close();
      } finally {
        await session.publisherConnection.close();
      }
    }
  }

  onReconnected(listener: (connection: string) => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  private notifyReconnected(connection: string): void {
    for (const listener of this.reconnectListeners) {
      try {
        listener(connection);
      } catch (error) {
        this.logger.warn(`a reconnect listener threw: ${messageOf(error)}`);
      }
    }
  }

  /** The current session, opened on first use (connections themselves connect lazily). */
  private open(): Session {
    if (this.session) return this.session;
    const settings = {
      urls: this.urls,
      redactor: this.redactor,
      connectionName: this.connectionName,
      reconnect: this.reconnect,
      logger: this.logger,
    };
    const publisherConnection = new ConnectionManager({ ...settings, role: 'publisher' });
    const consumerConnection = new ConnectionManager({ ...settings, role: 'consumer' });
    const publisher = new Publisher(publisherConnection, {
      publishTimeoutMs: this.publishTimeoutMs,
      maxUnconfirmed: this.maxUnconfirmed,
      logger: settings.logger,
      onMissingExchange: (name) => this.topology.forgetExchange(name),
    });
    const session: Session = {
      publisherConnection,
      consumerConnection,
      publisher,
      reader: new QueueReader({
        connection: consumerConnection,
        publishDeadLetter: (copy, from) =>
          publisher.publish('', deadLetterQueueName(from), copy.body, publishOptions(copy)),
        timeoutMs: this.connectTimeoutMs,
      }),
      consumers: new Set(),
      subscribers: new Set(),
      transient: new TransientPublisher(publisherConnection, settings.logger),
    };
    publisherConnection.onConnected(async (model, reconnected) => {
      if (!reconnected) return;
      this.notifyReconnected('publisher');
      await this.topology.redeclare(model);
    });
    consumerConnection.onConnected(async (model, reconnected) => {
      if (reconnected) {
        this.notifyReconnected('consumer');
        await this.topology.redeclare(model);
      }
      await Promise.all([...session.consumers].map((consumer) => consumer.resume(model)));
      await Promise.all([...session.subscribers].map((subscriber) => subscriber.resume(model)));
    });
    this.session = session;
    return session;
  }

  /**
   * Runs `work` with the publisher connection, again after a reconnect if the connection died
   * under it, until `timeoutMs`. Refusals by the broker and our own errors go straight through.
   */
  private async withPublisherConnection<T>(
    timeoutMs: number,
    work: (model: ChannelModel) => Promise<T>,
  ): Promise<T> {
    const connection = this.open().publisherConnection;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const model = await connection.connection(Math.max(1, deadline - Date.now()));
      try {
        return await work(model);
      } catch (error) {
        if (error instanceof ConveyorError || isRefusal(error)) throw error;
        if (Date.now() >= deadline) {
          throw new ConnectionError(
            `broker operation failed: ${this.redactor.redact(messageOf(error))}`,
            { cause: error },
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

const check: OptionChecker = new OptionChecker('AmqpTransport');

const QUEUE_TYPES = ['classic', 'quorum'] as const;

/** The `onError` option, or the deprecated `logger` behind it. */
function onErrorOf(options: AmqpTransportOptions): BackgroundErrorHandler | undefined {
  if (options.onError || !options.logger) return options.onError;
  warnDeprecatedOption('AmqpTransport', 'logger', 'give `onError` instead');
  const logger = options.logger;
  return (error) => logger.warn(error.message);
}
