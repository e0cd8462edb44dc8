import type { ClassType } from '../task/task-options';

/** Options of a {@link Worker}. */
export interface WorkerOptions {
  /**
   * Queues to consume.
   * @defaultValue the queues of all the app's tasks
   */
  queues?: string[];
  /**
   * Tasks run at once.
   * @defaultValue 10
   */
  concurrency?: number;
  /**
   * Each consumer's prefetch is `concurrency × prefetchMultiplier`. Raise it for many short tasks;
   * keep 1 for long ones, so idle workers get the work.
   * @defaultValue 1
   */
  prefetchMultiplier?: number;
  /**
   * Instances of task services (for services whose constructors take dependencies). Classes
   * with no instance here and no `resolve` are built with `new Class()`.
   * @defaultValue []
   */
  instances?: object[];
  /**
   * Builds a task service or class instance, e.g. from a DI container: `(cls) => container.get(cls)`.
   * @defaultValue none
   */
  resolve?: (cls: ClassType) => object;
  /**
   * Stop gracefully on SIGTERM and SIGINT (a second signal forces it) and exit the process.
   * @defaultValue true
   */
  handleSignals?: boolean;
  /**
   * How long `stop()` lets running tasks finish before it aborts them and requeues their messages.
   * @defaultValue 30_000
   */
  shutdownTimeoutMs?: number;
  /**
   * How long the worker keeps retrying to store a result before it gives the message back to
   * the queue unacknowledged (the task will run again).
   * @defaultValue 60_000
   */
  resultStoreTimeoutMs?: number;
  /**
   * The worker's name, shown in results (`worker`) and STARTED metas.
   * @defaultValue `conveyor-<pid>@<hostname>`
   */
  hostname?: string;
  /**
   * Path of the module that exports the app, loaded by task threads (`isolation: 'thread'`).
   * The CLI sets it from `--app`.
   * @defaultValue none: tasks with `isolation: 'thread'` are refused
   */
  appModule?: string;
  /**
   * Before running a task, read its stored state and skip it if it was revoked: this is how a
   * worker that started after a revoke still honours it. Costs one read per task.
   * @defaultValue true when the app has a result backend
   */
  checkRevokedInBackend?: boolean;
  /**
   * How often the worker asks the result backend to delete expired results (for backends that
   * need it, such as PostgreSQL); 0 turns it off.
   * @defaultValue 600_000 (ten minutes)
   */
  expirySweepIntervalMs?: number;
  /**
   * Message bodies larger than this are dead-lettered unread.
   * @defaultValue 16 MiB
   */
  maxBodyBytes?: number;
  /**
   * Send Celery task events (`task-received` ... `task-succeeded`, `task-failed`) on `celeryev`,
   * as `celery worker -E` does; the `enable_events`/`disable_events` control commands change it
   * at run time. Worker events (online, heartbeat, offline) are sent regardless.
   * @defaultValue false
   */
  taskEvents?: boolean;
  /**
   * Send `worker-heartbeat` events (Celery's `--without-heartbeat` is `false`). Monitors take a
   * worker without heartbeats as offline.
   * @defaultValue true
   */
  heartbeat?: boolean;
  /**
   * Between two heartbeats.
   * @defaultValue 2_000
   */
  heartbeatIntervalMs?: number;
  /**
   * Deliveries of a task message that may end without completing (a worker died running it, or
   * gave it back) before this worker dead-letters it with the reason "delivered N times without
   * completing" and stores FAILURE (`WorkerLostError`). A task's own `maxDeliveries` wins. Keep
   * it at or below the delivery limit of quorum queues (RabbitMQ 4: 20 by default), so it fires
   * first and the caller's `get()` ends.
   * @defaultValue 10 (`DEFAULT_MAX_DELIVERIES`)
   */
  maxDeliveries?: number;
}
