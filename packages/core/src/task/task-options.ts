/** A class constructor, as decorators and class-transformer see it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ClassType<T = unknown> = new (...args: any[]) => T;

/** Whether a worker acknowledges a task message after it ran (`late`) or before (`early`). */
export type AckMode = 'late' | 'early';

/** An error class, for `retry.on`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/** Automatic retries of a task that throws. */
export interface RetryOptions {
  /** Most retries after the first run; past it the task fails and its message is dead-lettered. */
  max: number;
  /**
   * `fixed`: every retry waits `delayMs`; `exponential`: `delayMs × 2^retries`, up to `maxDelayMs`.
   * @defaultValue 'exponential'
   */
  backoff?: 'fixed' | 'exponential';
  /**
   * The first (or every, for `fixed`) delay.
   * @defaultValue 1_000
   */
  delayMs?: number;
  /**
   * Ceiling of exponential delays.
   * @defaultValue 3_600_000 (one hour)
   */
  maxDelayMs?: number;
  /**
   * Pick each delay at random between half and all of it, so retries of many tasks spread out.
   * @defaultValue false
   */
  jitter?: boolean;
  /**
   * Retry only these errors (and their subclasses). `UnrecoverableError` is never retried.
   * @defaultValue every error
   */
  on?: ErrorClass[];
}

/** Where a task runs on the worker. */
export type TaskIsolation = 'none' | 'thread';

/** Options of `@Task(...)`. Every field may also be set per call where it makes sense. */
export interface TaskOptions {
  /**
   * Task name on the wire. On a service method it replaces `<service name>.<method>`.
   * @defaultValue `<service name>.<method>` for service methods; required on task classes
   */
  name?: string;
  /**
   * Queue the task is sent to.
   * @defaultValue the service's queue, else the app's `defaultQueue` (`celery`)
   */
  queue?: string;
  /**
   * `late`: the message is acked after the task ran and its result was stored (at-least-once).
   * `early`: acked before it runs (at-most-once: a crash loses it, a redelivery never repeats it).
   * @defaultValue 'late'
   */
  acks?: AckMode;
  /**
   * Store STARTED when a worker begins the task (Celery's `track_started`).
   * @defaultValue false
   */
  trackStarted?: boolean;
  /**
   * Store no result for this task.
   * @defaultValue false
   */
  ignoreResult?: boolean;
  /**
   * Priority of its messages (0-255), honoured on queues declared with `maxPriority`.
   * @defaultValue none (0)
   */
  priority?: number;
  /**
   * Deliveries of its message that may end without completing (the worker died or gave it back)
   * before a worker dead-letters it and stores FAILURE (`WorkerLostError`): the task runs at most
   * this many times. Overrides the worker's `maxDeliveries`.
   * @defaultValue the worker's `maxDeliveries` (10, `DEFAULT_MAX_DELIVERIES`)
   */
  maxDeliveries?: number;
  /**
   * Hard time limit in ms, sent in the `timelimit` header.
   * @defaultValue none
   */
  timeLimitMs?: number;
  /**
   * Soft time limit in ms, sent in the `timelimit` header.
   * @defaultValue none
   */
  softTimeLimitMs?: number;
  /**
   * Retry automatically when the task throws. `taskContext().retry()` retries explicitly.
   * @defaultValue no automatic retries
   */
  retry?: RetryOptions;
  /**
   * Most runs of this task per worker: `'100/s'`, `'10/m'`, `'1000/h'`. Tasks over the limit wait
   * (in the broker when the wait is long) without holding a worker slot or blocking other tasks.
   * @defaultValue unlimited
   */
  rateLimit?: string;
  /**
   * `thread` runs the task in a pool of worker threads, so a hard time limit or a revoke with
   * `terminate` really stops CPU-bound code (the thread is terminated). The worker must know the
   * module that exports the app (`appModule`, set by the CLI), and the task's class must be
   * constructible without arguments.
   * @defaultValue 'none' (the task runs on the worker's event loop)
   */
  isolation?: TaskIsolation;
  /**
   * Names of the parameters, in order, used to map keyword arguments (from Python callers) onto
   * positions. Read from the method's source when absent; give them when a build step mangles
   * parameter names.
   * @defaultValue the parameter names of the method as written
   */
  params?: string[];
  /**
   * The class of the task's return value, so `get()` rebuilds an instance (class-transformer)
   * instead of a plain object. TypeScript records no type for a Promise's value, hence this.
   * Its `Date` fields come back as Dates when TypeScript recorded their type, that is when the
   * field carries a decorator (`@IsDate()`, `@Type(() => Date)`); an undecorated `Date` field
   * stays the ISO string JSON carried.
   * @defaultValue none: the result comes back as plain JSON
   */
  returns?: () => ClassType;
}

/** Options of `@TaskService(...)`. */
export interface TaskServiceOptions {
  /** Prefix of its tasks' names: `<name>.<method>`. */
  name: string;
  /**
   * Queue of its tasks, unless a task names its own.
   * @defaultValue the app's `defaultQueue`
   */
  queue?: string;
}
