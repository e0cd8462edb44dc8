/**
 * Every default of the AMQP transport in one place. The `@defaultValue` docs of
 * {@link AmqpTransportOptions} point here; change a default here and there together.
 */

/** Broker used when no `url` is given: a local RabbitMQ with its stock account. */
export const DEFAULT_URL = 'amqp://guest:guest@localhost:5672';

/**
 * Heartbeat interval asked of the broker. Without heartbeats a half-open TCP connection (a
 * vanished peer, a NAT dropping state) is only noticed when a write fails, which for an idle
 * consumer is never.
 */
export const DEFAULT_HEARTBEAT_SECONDS = 30;

/** First word of the `connection_name` client property; role, host and pid follow it. */
export const DEFAULT_CONNECTION_NAME = 'conveyor';

/** How long a publish may go without any sign of broker progress before it fails. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 10_000;

/** How long `connect()`, `declareQueue()` and `consume()` wait for a broker connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Reconnect backoff: first pause, cap, growth per failed round of URLs, and ± jitter share. */
export const DEFAULT_RECONNECT_INITIAL_DELAY_MS = 100;
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 10_000;
export const DEFAULT_RECONNECT_MULTIPLIER = 2;
export const DEFAULT_RECONNECT_JITTER = 0.2;

/** Queue type of task queues whose declaration names none. */
export const DEFAULT_QUEUE_TYPE = 'classic';

/** Prefix of the shared delay-level exchanges and queues. */
export const DEFAULT_DELAY_NAMESPACE = 'conveyor.delay';

/**
 * Number of delay levels. Level L holds messages for 2^L ms, so 32 levels reach 2^32 - 1 ms
 * (about 49.7 days), beyond the 30 days a countdown or eta reasonably needs.
 */
export const DELAY_LEVELS = 32;

/**
 * How many times one publish is written before it gives up, when the channel keeps dying before
 * the broker confirms it. Bounds a publish that itself makes the broker close the channel or
 * the connection. Generous, because a flapping network loses channels in a row too: with the
 * connection cut every 100-300 ms on a loaded machine, 5 was reached by a few publishes of a
 * burst, which then failed although the broker was fine.
 */
export const MAX_PUBLISH_ATTEMPTS = 20;

/**
 * Publishes written to the channel and not yet confirmed, at most; the rest wait in the process.
 * A queue process handles publishes, acks and deliveries in one mailbox: a burst written all at
 * once queues its publishes ahead of the consumers' acks, and the consumers starve (in the
 * benchmark a worker held no message for most of a 20,000-task burst while thousands were
 * ready). 256 in flight keeps the mailbox short: Redis-backed throughput +20-35% on the bench
 * machine (64 was slower; 512 and 1,024 in between). The price is paid by a burst published to
 * a queue nobody consumes, whose confirms wait for disk: about 15% slower than unbounded (4,000
 * against 4,700 publishes/s in the backlog benchmark); raise it for such loads.
 */
export const DEFAULT_MAX_UNCONFIRMED = 256;

/**
 * Write buffer of a broker socket before `write()` asks the writer to wait for `drain`
 * (Node's default is 16 KiB). amqplib's multiplexer stops at that mark, and resumes on `drain`,
 * which only comes after a corked socket has been flushed: with 16 KiB, the rest of a burst of
 * publishes (256 Celery messages are about 140 KiB) then left in one syscall per frame. With
 * room for a whole window it leaves in one `writev` (bench: producer writes per task 0.9 →
 * 0.06, Redis-backed throughput +7%). Only bytes already handed to amqplib wait here; the
 * publish window bounds how many. The read side keeps Node's default: with 1 MiB there too,
 * worker RSS growth in the backlog benchmark went over 50 MB in three of six workers (32-46 MB
 * in ten without).
 */
export const SOCKET_WRITE_HIGH_WATER_MARK = 1024 * 1024;

/** How long the TCP connect and AMQP handshake may take before the attempt counts as failed. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** How often pending publishes are checked against `publishTimeoutMs`. */
export const PUBLISH_WATCHDOG_INTERVAL_MS = 100;

/**
 * Port of RabbitMQ's management API (the `rabbitmq_management` plugin), asked for unacked
 * messages and rates when no `managementUrl` is given.
 */
export const DEFAULT_MANAGEMENT_PORT = 15672;

/**
 * How long one management API request may take. Short: the API only adds detail to queue
 * statistics, which are shown without it when it is slow or off.
 */
export const DEFAULT_MANAGEMENT_TIMEOUT_MS = 2_000;
