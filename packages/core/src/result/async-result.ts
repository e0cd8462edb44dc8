import type { ResultBackend } from '../backend/result-backend';
import { ConfigError, TimeoutError, type TaskFailedError, type TaskRevokedError } from '../errors';
import type { TaskState } from '../protocol/result-meta';
import { errorFromMeta } from './exception-meta';

/** Options of {@link AsyncResult.get}. */
export interface GetOptions {
  /**
   * Give up after this long with a `TimeoutError`; `Infinity` waits for ever (Celery's
   * `timeout=None`), and any finite wait may be longer than `setTimeout`'s 24.8 days. A negative
   * or NaN value is a `ConfigError`.
   * @defaultValue the app's `getTimeoutMs` (60 s)
   */
  timeoutMs?: number;
  /**
   * When true, a failed or revoked task makes `get()` throw; when false, it returns the error.
   * @defaultValue true
   */
  propagate?: boolean;
}

/** Options of a revoke. */
export interface RevokeOptions {
  /**
   * Also abort the task if it is running: its AbortSignal fires, and a task in a thread is
   * terminated.
   * @defaultValue false
   */
  terminate?: boolean;
}

/** What an AsyncResult needs from its app; internal. */
export interface ResultSource<R> {
  readonly backend: ResultBackend | undefined;
  readonly defaultTimeoutMs: number;
  decode(value: unknown): R;
  revoke(taskId: string, options: RevokeOptions): Promise<void>;
}

/** A handle on a task's result, from `delay()`, `applyAsync()`, `send()` or `app.result(id)`. */
export class AsyncResult<R = unknown> {
  constructor(
    /** The task id. */
    readonly id: string,
    private readonly source: ResultSource<R>,
  ) {}

  /**
   * Waits for the task to finish and returns its value. Throws `TaskFailedError` (carrying the
   * remote exception type, message and stack) if it failed, `TaskRevokedError` if it was revoked
   * or expired, and `TimeoutError` if it did not finish in time.
   */
  get(options?: GetOptions & { propagate?: true }): Promise<R>;
  get(options: GetOptions & { propagate: false }): Promise<R | TaskFailedError | TaskRevokedError>;
  async get(options: GetOptions = {}): Promise<R | TaskFailedError | TaskRevokedError> {
    const backend = this.requireBackend();
    const timeoutMs = options.timeoutMs ?? this.source.defaultTimeoutMs;
    if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new ConfigError(
        `timeoutMs must be a number of milliseconds >= 0 (Infinity waits for ever), not ${String(timeoutMs)}`,
      );
    }
    const meta = await backend.waitForReady(this.id, timeoutMs);
    if (!meta) {
      const last = await backend.get(this.id).catch(() => undefined);
      throw new TimeoutError(this.id, last?.status ?? 'PENDING', timeoutMs);
    }
    if (meta.status === 'SUCCESS') return this.source.decode(meta.result);
    const error = errorFromMeta(meta) as TaskFailedError | TaskRevokedError;
    if (options.propagate === false) return error;
    throw error;
  }

  /** The task's current state; PENDING when nothing is known (Celery's convention). */
  async state(): Promise<TaskState> {
    const meta = await this.requireBackend().get(this.id);
    return meta?.status ?? 'PENDING';
  }

  /**
   * What the task stored with its state (Celery's `AsyncResult.info`): the progress meta while
   * it is PROGRESS, its `{ pid, hostname }` while STARTED, the return value in wire form once
   * SUCCESS, the exception meta once FAILURE or REVOKED; undefined while nothing is stored.
   */
  async info(): Promise<unknown> {
    const meta = await this.requireBackend().get(this.id);
    return meta?.result;
  }

  /** True once the task succeeded, failed or was revoked. */
  async ready(): Promise<boolean> {
    const state = await this.state();
    return state === 'SUCCESS' || state === 'FAILURE' || state === 'REVOKED';
  }

  /** True if the task succeeded. */
  async successful(): Promise<boolean> {
    return (await this.state()) === 'SUCCESS';
  }

  /** True if the task failed. */
  async failed(): Promise<boolean> {
    return (await this.state()) === 'FAILURE';
  }

  /** Deletes the stored result. */
  async forget(): Promise<void> {
    await this.requireBackend().forget(this.id);
  }

  /** Revokes the task (see `Conveyor.revoke`). */
  revoke(options: RevokeOptions = {}): Promise<void> {
    return this.source.revoke(this.id, options);
  }

  private requireBackend(): ResultBackend {
    const backend = this.source.backend;
    if (!backend) {
      throw new ConfigError(
        `no result backend is configured, so the result of task ${this.id} cannot be read`,
      );
    }
    return backend;
  }
}
