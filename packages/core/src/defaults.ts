/**
 * Every default in one place. Options' `@defaultValue` docs point here; change a default here and
 * in those docs together.
 */

/** Queue of tasks that name none: Celery's default queue, so Python workers find them. */
export const DEFAULT_QUEUE = 'celery';

/** How long `AsyncResult.get()` waits when no `timeoutMs` is given. No wait is endless. */
export const DEFAULT_GET_TIMEOUT_MS = 60_000;

/**
 * How long `app.close()` gives the broker and the result backend each to close before it
 * reports them unclosed and resolves: above their own bounds (10 s), so it is a backstop.
 */
export const DEFAULT_CLOSE_TIMEOUT_MS = 15_000;

/** Tasks a worker runs at once. */
export const DEFAULT_CONCURRENCY = 10;

/** Prefetch per consumer = concurrency × this. 1 suits long tasks and fair distribution. */
export const DEFAULT_PREFETCH_MULTIPLIER = 1;

/** How long a graceful shutdown lets in-flight tasks finish before aborting and requeueing them. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;

/** How long a worker keeps retrying to store a result before it gives the message back. */
export const DEFAULT_RESULT_STORE_TIMEOUT_MS = 60_000;

/** First and largest pause between attempts to store a result. */
export const RESULT_STORE_BACKOFF_MIN_MS = 50;
export const RESULT_STORE_BACKOFF_MAX_MS = 5_000;

/** Pause before a message that could not be re-delayed is handed back, so it cannot spin. */
export const REQUEUE_PAUSE_MS = 1_000;

/** Exit codes of a worker stopped by a signal. */
export const EXIT_GRACEFUL = 0;
/** In-flight tasks outlived the shutdown timeout; they were aborted and requeued. */
export const EXIT_SHUTDOWN_TIMEOUT = 1;
/** A second signal forced the stop; in-flight tasks were requeued at once. */
export const EXIT_FORCED = 2;
/** `conveyor`: bad usage or configuration (sysexits' EX_USAGE). */
export const EXIT_USAGE = 64;
/** `conveyor`: the broker or the result backend could not be reached at startup (EX_UNAVAILABLE). */
export const EXIT_UNAVAILABLE = 69;
/** `conveyor`: an unexpected error, a bug or a crash of the app's own code (EX_SOFTWARE). */
export const EXIT_SOFTWARE = 70;

/** A rate-limited task whose slot is nearer than this waits in the worker; farther, in the broker. */
export const RATE_LIMIT_LOCAL_WAIT_MS = 100;

/** How often a worker asks its result backend to delete expired results. */
export const DEFAULT_EXPIRY_SWEEP_INTERVAL_MS = 600_000;

/**
 * Largest message body (bytes) a worker accepts, and `delay()` sends: a larger one is refused
 * at `delay()` rather than dead-lettered by the worker.
 */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Deepest JSON nesting a worker accepts in a message body; the body array itself is level 1. */
export const DEFAULT_MAX_BODY_DEPTH = 64;

/**
 * Deepest nesting `delay()` accepts in one argument or result. An argument sits two levels down
 * in the body (`[[arg, ...], {...}, {...}]`), so whatever `delay()` sends, a worker with the
 * default limit decodes.
 */
export const MAX_SEND_DEPTH = DEFAULT_MAX_BODY_DEPTH - 2;

/** How long the control client waits for workers' replies when no `timeoutMs` is given (Celery's 1 s). */
export const DEFAULT_CONTROL_TIMEOUT_MS = 1_000;

/** Tasks `pool_grow` and `pool_shrink` add or take away when no `n` is given (Celery's 1). */
export const DEFAULT_POOL_RESIZE_STEP = 1;

/** How often a worker sends `worker-heartbeat` events (Celery's 2 s). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;

/** Dead letters `DeadLetters.list()` returns per page when no `limit` is given. */
export const DEFAULT_DEAD_LETTER_PAGE_SIZE = 50;

/**
 * Deliveries of a task message that may end without completing (its worker died or gave it
 * back) before a worker dead-letters it and stores FAILURE (`WorkerLostError`). Below RabbitMQ
 * 4's default quorum-queue delivery limit (20), so the worker's cap fires first.
 */
export const DEFAULT_MAX_DELIVERIES = 10;

/** Buckets of the `conveyor_task_runtime_seconds` histogram: 5 ms to 10 minutes. */
export const DEFAULT_TASK_RUNTIME_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
] as const;

/** Buckets of the `conveyor_result_store_seconds` histogram: 1 ms to 60 s (the store timeout). */
export const DEFAULT_RESULT_STORE_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 15, 60,
] as const;
