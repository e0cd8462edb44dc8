import type { ResultBackend } from '../backend/result-backend';
import { RESULT_STORE_BACKOFF_MAX_MS, RESULT_STORE_BACKOFF_MIN_MS } from '../defaults';
import { celeryDateDone } from '../protocol/celery-time';
import { isReadyState, type ResultMeta, type TaskState } from '../protocol/result-meta';
import type { TaskMessage } from '../protocol/task-message';
import { exceptionMetaOf, tracebackOf } from '../result/exception-meta';
import { remainingChainSteps, type PendingChainStep } from './canvas-links';
import type { ResultStoredEvent } from './worker-events';

/** Builds Celery result metas for a worker and stores them, retrying while the store is down. */
export class ResultWriter {
  constructor(
    private readonly backend: ResultBackend,
    private readonly hostname: string,
    private readonly extended: boolean,
    private readonly storeTimeoutMs: number,
    /** Told of every store, for the worker's `result-stored` event (metrics). */
    private readonly observe: (event: ResultStoredEvent) => void = () => undefined,
  ) {}

  started(message: TaskMessage, queue: string): ResultMeta {
    return this.meta(
      message,
      queue,
      'STARTED',
      { pid: process.pid, hostname: this.hostname },
      null,
    );
  }

  /** PROGRESS with the task's own meta, as Celery's `update_state` stores it. */
  progress(message: TaskMessage, queue: string, meta: unknown): ResultMeta {
    return this.meta(message, queue, 'PROGRESS', meta, null);
  }

  success(message: TaskMessage, queue: string, value: unknown): ResultMeta {
    return this.meta(message, queue, 'SUCCESS', value, null);
  }

  failure(message: TaskMessage, queue: string, error: unknown): ResultMeta {
    return this.meta(message, queue, 'FAILURE', exceptionMetaOf(error), tracebackOf(error));
  }

  /**
   * The FAILURE of a chain step that will never run because an earlier step failed: the same
   * exception and traceback, stored under the step's id (Celery's `mark_as_failure` does this
   * for each element of `request.chain`).
   */
  chainStepFailure(step: PendingChainStep, error: unknown): ResultMeta {
    const meta: ResultMeta = {
      status: 'FAILURE',
      result: exceptionMetaOf(error),
      traceback: tracebackOf(error),
      children: [],
      date_done: celeryDateDone(),
      task_id: step.id,
    };
    if (step.group) meta.group_id = step.group;
    if (this.extended) meta.name = step.task;
    return meta;
  }

  /**
   * Stores {@link chainStepFailure} for each step of `message`'s chain that will now never run
   * (`remainingChainSteps`), each retried as {@link store} retries.
   */
  async storeChainFailures(
    message: TaskMessage,
    error: unknown,
    giveUp: () => boolean,
    onError: (error: Error) => void,
  ): Promise<void> {
    for (const step of remainingChainSteps(message)) {
      await this.store(this.chainStepFailure(step, error), giveUp, onError);
    }
  }

  /** REVOKED, stored the way Celery stores a revoked or expired task. */
  revoked(message: TaskMessage, queue: string, reason: string): ResultMeta {
    const result = {
      exc_type: 'TaskRevokedError',
      exc_message: [reason],
      exc_module: 'celery.exceptions',
    };
    return this.meta(message, queue, 'REVOKED', result, null);
  }

  /**
   * Stores `meta`, retrying with exponential backoff for up to the store timeout, or until
   * `giveUp()` says to stop. Returns whether it was stored.
   */
  async store(
    meta: ResultMeta,
    giveUp: () => boolean,
    onError: (error: Error) => void,
  ): Promise<boolean> {
    const deadline = Date.now() + this.storeTimeoutMs;
    const startedAt = performance.now();
    const observed = (stored: boolean): boolean => {
      const durationMs = performance.now() - startedAt;
      this.observe({ id: meta.task_id, state: meta.status, durationMs, stored });
      return stored;
    };
    let pause = RESULT_STORE_BACKOFF_MIN_MS;
    for (;;) {
      try {
        await this.backend.store(meta);
        return observed(true);
      } catch (error) {
        onError(error as Error);
        if (Date.now() + pause > deadline || giveUp()) return observed(false);
        await new Promise((resolve) => setTimeout(resolve, pause * (0.5 + Math.random() / 2)));
        pause = Math.min(pause * 2, RESULT_STORE_BACKOFF_MAX_MS);
      }
    }
  }

  private meta(
    message: TaskMessage,
    queue: string,
    status: TaskState,
    result: unknown,
    traceback: string | null,
  ): ResultMeta {
    const h = message.headers;
    const meta: ResultMeta = {
      status,
      result,
      traceback,
      children: [],
      date_done: isReadyState(status) ? celeryDateDone() : null,
      task_id: h.id,
    };
    // As Celery's _get_result_meta: only when the request has them (a chain step, a subtask).
    if (h.group) meta.group_id = h.group;
    if (h.parent_id) meta.parent_id = h.parent_id;
    if (this.extended) {
      Object.assign(meta, {
        name: h.task,
        args: message.args,
        kwargs: message.kwargs,
        worker: this.hostname,
        retries: h.retries,
        queue,
      });
    }
    return meta;
  }
}
