import type { GroupMeta, ResultMeta } from '../protocol/result-meta';

/**
 * The contract between core and a result store. Implemented by the in-memory default,
 * `@conveyor/result-redis` and `@conveyor/result-postgres`; every implementation must pass the
 * backend conformance suite (`@conveyor/core/testing`).
 */
export interface ResultBackend {
  /** Connects (idempotent). Operations connect on first use, so calling it is optional. */
  connect(): Promise<void>;
  /**
   * Stores a task's meta and wakes its waiters. A task whose stored state is ready (SUCCESS,
   * FAILURE, REVOKED) keeps it: a later write for that task is ignored, so a redelivered
   * task's late STARTED never hides its result.
   */
  store(meta: ResultMeta): Promise<void>;
  /** Reads a task's meta; undefined when nothing is stored (the task is PENDING or forgotten). */
  get(taskId: string): Promise<ResultMeta | undefined>;
  /**
   * Reads several tasks' metas in one round trip, in the order asked (undefined where nothing is
   * stored). Optional: without it, callers read one by one. Workers use it to check a batch of
   * tasks for revokes before running them.
   */
  getMany?(taskIds: readonly string[]): Promise<Array<ResultMeta | undefined>>;
  /**
   * Waits until the task's meta is in a ready state and returns it, or returns undefined once
   * `timeoutMs` has passed. Free of races: a result stored at any moment after the call began
   * is seen. Many concurrent waits must share the backend's connections. `timeoutMs` may be
   * `Infinity` or longer than `setTimeout` allows: arm it with `afterDelay`.
   */
  waitForReady(taskId: string, timeoutMs: number): Promise<ResultMeta | undefined>;
  /**
   * Told by the producer when it has handed a task whose result will be stored to the transport,
   * before the broker's confirm (Celery's `on_task_call` comes just before the publish).
   * Optional. A backend that pushes results may start listening now, so that a `waitForReady()`
   * soon after finds the result without a round trip of its own. Must not throw and must not
   * wait; what it sets up must end by itself if nobody waits.
   */
  watch?(taskId: string): void;
  /** Deletes a task's meta. */
  forget(taskId: string): Promise<void>;
  /** Stores a group's meta. */
  storeGroup(meta: GroupMeta): Promise<void>;
  /** Reads a group's meta. */
  getGroup(groupId: string): Promise<GroupMeta | undefined>;
  /** Deletes a group's meta. */
  forgetGroup(groupId: string): Promise<void>;
  /**
   * Deletes expired results once, for stores that do not expire entries themselves (PostgreSQL;
   * Redis keys expire on their own, so its backend leaves this out). Workers call it
   * periodically; implementations let one sweep run at a time across processes.
   */
  sweepExpired?(): Promise<unknown>;
  /**
   * Where this store is, for logs and the worker's startup banner: its URL with any password
   * masked (`amqp://guest:***@host:5672/`). Optional: without it the class name is shown.
   */
  describe?(): string;
  /** Releases connections and ends every pending wait (they return undefined). */
  close(): Promise<void>;
}
