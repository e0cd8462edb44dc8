import type { ConnectionError } from '../errors';
import type { GroupMeta, ResultMeta } from '../protocol/result-meta';

/**
 * The contract between core and a result store. Implemented by the in-memory default,
 * `@conveyor/result-redis` and `@conveyor/result-postgres`; every implementation must pass the
 * backend conformance suite (`@conveyor/core/testing`).
 *
 * **Optional capabilities.** As on `Transport`: what not every store can offer is grouped into
 * named capabilities ({@link BACKEND_CAPABILITIES}), each a set of optional members; a backend
 * declares one by implementing all of its members; a feature that needs one calls
 * `requireCapability(backend, name, feature, offeredBy)` when it starts and gets a `ConfigError`
 * naming them if it is absent; the conformance suite runs a capability's cases only for a
 * fixture that lists it. (`getMany`, `watch` and `sweepExpired` are older optional members that
 * callers do without, not capabilities.)
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
   * Where this store is, for logs and the worker's startup banner: its URL with its password
   * masked (`amqp://guest:***@host:5672/`). Optional: without it the class name is shown.
   */
  describe?(): string;
  /**
   * Adds a listener for failures the backend meets in the background and recovers from by
   * itself (a lost connection, failed polls or sweeps), as `ConnectionError`s without credentials; returns a function that removes
   * it. Optional. A worker listens while it runs and reports them as its `worker-error` event.
   * Plugins built on `@conveyor/core/plugin` implement it with `BackgroundErrors`, beside their
   * `onError` option.
   */
  onBackgroundError?(listener: (error: ConnectionError) => void): () => void;
  /** Releases connections and ends every pending wait (they return undefined). */
  close(): Promise<void>;

  // Capability `counters`: atomic counters that expire, shared by every process using the
  // store (redelivery counts per task, chord counters).

  /**
   * Adds `by` to the counter `key` (a missing or expired counter counts from 0) and resolves
   * with the new value, atomically across processes. Sets the counter to expire `expiresInMs`
   * after this call. Keys are the caller's; a backend may prefix them. Capability `counters`.
   */
  increment?(key: string, by: number, expiresInMs: number): Promise<number>;
  /** Deletes the counter `key`; nothing happens when there is none. Capability `counters`. */
  forgetCounter?(key: string): Promise<void>;

  // Capability `leases`: one holder at a time for a named job across processes, for a bounded
  // time (the periodic task scheduler's lease).

  /**
   * Takes the lease `name` for `holder` for `ttlMs`, if it is free, expired or already held by
   * `holder` (then it is extended). Resolves true when `holder` holds it now. Capability `leases`.
   */
  acquireLease?(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /**
   * Gives the lease up if `holder` holds it; a lease held by another holder is left alone.
   * Capability `leases`.
   */
  releaseLease?(name: string, holder: string): Promise<void>;
}

/**
 * The optional capabilities of a {@link ResultBackend}: each name with the members that make it
 * up. A backend has a capability when it implements every one of them.
 */
export const BACKEND_CAPABILITIES = {
  counters: ['increment', 'forgetCounter'],
  leases: ['acquireLease', 'releaseLease'],
} as const satisfies Record<string, ReadonlyArray<keyof ResultBackend>>;

/** The name of an optional capability of a {@link ResultBackend}. */
export type BackendCapability = keyof typeof BACKEND_CAPABILITIES;
