import type { BackgroundErrorHandler } from '@conveyor/core/plugin';

/**
 * Where the transport reported what a caller cannot see in a promise: reconnects, lost channels.
 * @deprecated Give `onError` instead; the `logger` option leaves in the next minor version.
 */
export interface AmqpTransportLogger {
  /** Something went wrong and the transport is recovering from it. Never holds credentials. */
  warn(message: string): void;
}

/** Reconnect backoff: exponential with jitter, one step per failed round over all URLs. */
export interface ReconnectOptions {
  /**
   * Pause after the first failed round (a lost connection is retried once at once first).
   * @defaultValue 100 (`DEFAULT_RECONNECT_INITIAL_DELAY_MS`)
   */
  initialDelayMs?: number;
  /**
   * Longest pause between rounds; also the longest a consumer stays away once the broker is back.
   * @defaultValue 10_000 (`DEFAULT_RECONNECT_MAX_DELAY_MS`)
   */
  maxDelayMs?: number;
  /**
   * Factor the pause grows by after each failed round.
   * @defaultValue 2 (`DEFAULT_RECONNECT_MULTIPLIER`)
   */
  multiplier?: number;
  /**
   * Share of the pause drawn at random either way (0-1), so many clients do not reconnect in step.
   * @defaultValue 0.2 (`DEFAULT_RECONNECT_JITTER`)
   */
  jitter?: number;
}

/** Options of {@link AmqpTransport}. */
export interface AmqpTransportOptions {
  /**
   * Broker URL (`amqp://user:password@host:port/vhost`, or `amqps://`). Several URLs are the
   * nodes of one cluster: each connection tries them in turn, starting with the one that last
   * worked. Credentials in them are never logged nor put in error messages.
   * @defaultValue `'amqp://guest:guest@localhost:5672'` (`DEFAULT_URL`)
   */
  url?: string | string[] | undefined;
  /**
   * Heartbeat interval to ask of the broker; `0` turns heartbeats off. A `heartbeat` query
   * parameter in a URL wins over this.
   * @defaultValue 30 (`DEFAULT_HEARTBEAT_SECONDS`)
   */
  heartbeatSeconds?: number;
  /**
   * First part of the `connection_name` client property shown by RabbitMQ; the role
   * (`publisher` or `consumer`), host name and process id are appended.
   * @defaultValue `'conveyor'` (`DEFAULT_CONNECTION_NAME`)
   */
  connectionName?: string;
  /**
   * How long a publish waits without broker progress (no connection, no confirm, no drain)
   * before it rejects with `ConnectionError`. During an outage this is how long `publish()` waits.
   * @defaultValue 10_000 (`DEFAULT_PUBLISH_TIMEOUT_MS`)
   */
  publishTimeoutMs?: number;
  /**
   * How many publishes may be written to the broker and not yet confirmed; further publishes
   * wait in this process until confirms come back. Keeps a burst from queueing in the broker
   * ahead of the consumers' acks.
   * @defaultValue 256 (`DEFAULT_MAX_UNCONFIRMED`)
   */
  maxUnconfirmed?: number;
  /**
   * How long `connect()`, `declareQueue()` and `consume()` wait for a broker connection before
   * rejecting with `ConnectionError`.
   * @defaultValue 10_000 (`DEFAULT_CONNECT_TIMEOUT_MS`)
   */
  connectTimeoutMs?: number;
  /**
   * Reconnect backoff.
   * @defaultValue see {@link ReconnectOptions}
   */
  reconnect?: ReconnectOptions;
  /**
   * Queue type of task queues whose declaration does not name one. `quorum` queues are
   * replicated; `classic` ones are what Python Celery declares by default.
   * @defaultValue `'classic'` (`DEFAULT_QUEUE_TYPE`)
   */
  queueType?: 'classic' | 'quorum';
  /**
   * Prefix of the delay-level exchanges and queues shared by every task queue (`<ns>.level-05`,
   * `<ns>.delivery`). All processes that exchange delayed messages must use the same one.
   * @defaultValue `'conveyor.delay'` (`DEFAULT_DELAY_NAMESPACE`)
   */
  delayNamespace?: string;
  /**
   * RabbitMQ's management API (`http://user:password@host:15672`), asked for the unacked
   * messages and rates of `queueStats()` (`conveyor queues`); `false` never asks it. When
   * it does not answer, statistics hold what AMQP tells (ready messages, consumers) only.
   * @defaultValue the first broker URL's host, port 15672 (`DEFAULT_MANAGEMENT_PORT`), with the
   * broker URL's credentials
   */
  managementUrl?: string | false;
  /**
   * Called with failures the transport meets in the background and recovers from by itself
   * (lost connections and channels, reconnects, consumers it cannot restart), as
   * `ConnectionError`s whose messages never hold credentials. A worker also reports them as
   * its `worker-error` event.
   * @defaultValue a `console.warn`, at most once every ten seconds
   */
  onError?: BackgroundErrorHandler;
  /**
   * Receives the messages of those failures as warnings.
   * @deprecated Give `onError` instead (the messages are the same); leaves in the next minor version.
   */
  logger?: AmqpTransportLogger;
}
