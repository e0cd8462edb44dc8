/**
 * Every default of the PostgreSQL result backend, in one place, so the options' TSDoc, the README
 * and the code cannot drift apart.
 */

/** Schema the tables live in. */
export const DEFAULT_SCHEMA = 'public';
/** Table of task result metas. */
export const DEFAULT_TABLE = 'conveyor_task_results';
/** Table of group metas. */
export const DEFAULT_GROUP_TABLE = 'conveyor_group_results';
/** Pool size of a pool the backend creates itself. */
export const DEFAULT_MAX_CONNECTIONS = 10;
/** How long opening a connection may take before the operation fails. */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000;
/** Server-side limit on every statement, and (plus a grace) the client-side read timeout. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 10_000;
/**
 * Added to the statement timeout for the client-side read timeout: the server should cancel
 * first, the client only gives up on a connection that stopped answering at all.
 */
export const QUERY_TIMEOUT_GRACE_MS = 2_000;
/** Shown in pg_stat_activity, so operators can tell these connections apart (and tests can kill them). */
export const DEFAULT_APPLICATION_NAME = 'conveyor-results';
/** One day, as Celery's `result_expires`. */
export const DEFAULT_RESULT_EXPIRES_MS = 86_400_000;
/** How often a backend tries to run the expiry sweep; only one process runs it at a time. */
export const DEFAULT_EXPIRY_SWEEP_INTERVAL_MS = 600_000;
/** Rows deleted per DELETE statement by the sweeper: small enough to hold locks only briefly. */
export const DEFAULT_EXPIRY_BATCH_SIZE = 1_000;
/** First poll delay after a new waiter, and the interval after something changed. */
export const DEFAULT_MIN_POLL_INTERVAL_MS = 5;
/** The interval the poller backs off to while nothing changes. */
export const DEFAULT_MAX_POLL_INTERVAL_MS = 500;
/** Ids per poll query; a larger pending set is polled in several queries per tick. */
export const POLL_CHUNK_SIZE = 10_000;
/** Idle pooled connections are closed after this long. */
export const POOL_IDLE_TIMEOUT_MS = 30_000;
/** Ceiling of the LISTEN connection's reconnect backoff. */
export const MAX_LISTEN_RECONNECT_DELAY_MS = 5_000;
/** Background failures (polling, LISTEN, sweeps) are reported at most this often. */
export const ERROR_REPORT_INTERVAL_MS = 10_000;
/** Most rows one store statement writes (`storeBatchSize`). */
export const DEFAULT_STORE_BATCH_SIZE = 100;
/**
 * Store statements one backend instance runs at once. Stores made while they run wait and leave
 * together as the next batch, which is what makes batches form under load.
 */
export const STORE_BATCHES_IN_FLIGHT = 2;
/**
 * Bytes of task ids (as JSON) per NOTIFY of a batch, below PostgreSQL's 8,000-byte payload
 * limit with room for one more id of up to about 900 bytes.
 */
export const NOTIFY_PAYLOAD_BUDGET = 7_000;
