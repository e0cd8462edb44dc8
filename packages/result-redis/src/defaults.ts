/**
 * The package's safe defaults, in one place. Key names and the expiry match Celery's own
 * defaults so that Python Celery reads what Conveyor stores, and the other way round.
 */

/** Where to connect when neither `url` nor `client` is given. */
export const DEFAULT_URL = 'redis://127.0.0.1:6379';

/** Celery's key prefix for task results (`celery-task-meta-<id>`); also the PUBLISH channel. */
export const DEFAULT_KEY_PREFIX = 'celery-task-meta-';

/** Celery's key prefix for stored groups (`celery-taskset-meta-<id>`). */
export const DEFAULT_GROUP_KEY_PREFIX = 'celery-taskset-meta-';

/** One day, as Celery's `result_expires`. */
export const DEFAULT_RESULT_EXPIRES_MS = 86_400_000;

/**
 * How long one operation may take before it fails with a `ConnectionError`. Bounded so that a
 * worker's `store()` during an outage fails and is retried rather than hanging forever.
 */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** Base of the `CLIENT SETNAME` names: `<base>:<pid>` and `<base>-sub:<pid>`. */
export const DEFAULT_CONNECTION_NAME = 'conveyor:results';

/** Channels per SUBSCRIBE / UNSUBSCRIBE command, to keep single commands a sane size. */
export const SUBSCRIBE_BATCH_SIZE = 1_000;

/** Pause before reading a pending key again after the read failed (the store was unreachable). */
export const REREAD_DELAY_MS = 1_000;
/**
 * How long the backend listens for the result of a task it was told about on send, before
 * anyone waits for it, and keeps a result that arrived meanwhile. Celery's Redis backend
 * subscribes on send too.
 */
export const DEFAULT_WATCH_ON_SEND_MS = 10_000;
/** Most tasks watched without a waiter, and most early results kept, at once; beyond, waits take the usual path. */
export const MAX_WATCHED = 50_000;
/** Longest pause between two sweeps of expired watches and early results. */
export const WATCH_SWEEP_INTERVAL_MS = 1_000;
