import { AsyncLocalStorage } from 'node:async_hooks';
import { ConfigError } from '../errors';
import type { TaskHeaders } from '../protocol/task-message';

/** What a running task can know about itself, from {@link taskContext}. */
export interface TaskContext {
  /** The task id. */
  readonly id: string;
  /** The task name. */
  readonly name: string;
  /** How many times it was retried before this run (Celery's `request.retries`). */
  readonly retries: number;
  /** This run's number, starting at 1 (`retries + 1`). */
  readonly attempt: number;
  /** The message headers, as received. */
  readonly headers: Readonly<TaskHeaders>;
  /** Fires when the task should stop: time limit, revoke, or forced shutdown. */
  readonly signal: AbortSignal;
  /** Id of the first task of the workflow. */
  readonly rootId: string;
  /** Id of the task that sent this one, if any. */
  readonly parentId: string | null;
  /** The queue it was consumed from. */
  readonly queue: string;
  /** True when the broker delivered this message before (a previous run may have happened). */
  readonly redelivered: boolean;
  /** The worker's name (`<name>@<host>`). */
  readonly hostname: string;
  /**
   * Ends this run and retries the task through the broker's delayed delivery, after
   * `countdownMs` or the task's backoff. Counts against `retry.max` (3 when the task declares
   * no `retry`). Throws; do not catch what it throws.
   */
  retry(options?: { countdownMs?: number; error?: unknown }): never;
  /**
   * Stores `meta` as the task's state `PROGRESS` (Celery's `update_state(state='PROGRESS',
   * meta=meta)`), for callers to read with `state()` and `info()` (Python: `result.info`) while it
   * runs. Resolves once stored; a no-op when results are off. `meta` must be JSON, as a result;
   * a final state stored later replaces it. In a task thread it resolves at once, the store
   * happening on the worker's thread.
   */
  progress(meta: unknown): Promise<void>;
}

const storage = new AsyncLocalStorage<TaskContext>();

/**
 * The context of the task running in this async call chain. Only valid inside a task; it does
 * not appear in the task method's parameters, so typed clients stay clean.
 */
export function taskContext(): TaskContext {
  const context = storage.getStore();
  if (!context) throw new ConfigError('taskContext() was called outside a running task');
  return context;
}

/** The running task's context, or undefined outside a task. Used to link child tasks. */
export function currentTaskContext(): TaskContext | undefined {
  return storage.getStore();
}

/** Runs `fn` with `context` as the current task context. Internal to the worker. */
export function runInTaskContext<T>(context: TaskContext, fn: () => T): T {
  return storage.run(context, fn);
}
