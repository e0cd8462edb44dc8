import type { ExceptionMeta } from '../protocol/result-meta';
import type { TaskHeaders } from '../protocol/task-message';

/** Messages between a worker and its task threads. Everything in them is structured-cloneable. */

/** Run one task in the thread. */
export interface ThreadRunRequest {
  type: 'run';
  taskName: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  context: {
    id: string;
    name: string;
    retries: number;
    headers: TaskHeaders;
    rootId: string;
    parentId: string | null;
    queue: string;
    redelivered: boolean;
    hostname: string;
  };
}

/** Fire the running task's AbortSignal (soft time limit). */
export interface ThreadAbortRequest {
  type: 'abort';
  reason: { name: string; message: string };
}

/** How a task run in a thread ended. */
export type ThreadOutcome =
  | { ok: true; value: unknown }
  | {
      ok: false;
      error: ExceptionMeta;
      traceback: string | null;
      /** Set when the task called `taskContext().retry()`. */
      retry?: { countdownMs?: number };
      /** Set when the error was an `UnrecoverableError`. */
      unrecoverable?: boolean;
    };

/** What the thread posts back when it is ready, reports progress or has finished a run. */
export type ThreadReply =
  | { type: 'ready' }
  | { type: 'loadError'; message: string }
  | { type: 'done'; outcome: ThreadOutcome }
  /** `taskContext().progress(meta)` in the running task; the worker's thread stores it. */
  | { type: 'progress'; meta: unknown };
