/**
 * Celery's result meta document: what a result backend stores per task, in Celery's own field
 * names so that Python Celery and Conveyor can read each other's results.
 */

/**
 * Task states, as Celery names them, and `PROGRESS`: the custom state Celery users store with
 * `update_state(state='PROGRESS', meta=...)`, which `taskContext().progress()` stores.
 */
export type TaskState =
  'PENDING' | 'RECEIVED' | 'STARTED' | 'PROGRESS' | 'RETRY' | 'SUCCESS' | 'FAILURE' | 'REVOKED';

/** States after which a task's result never changes. */
export const READY_STATES: ReadonlySet<TaskState> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

/** True for SUCCESS, FAILURE and REVOKED. */
export function isReadyState(state: string): boolean {
  return READY_STATES.has(state as TaskState);
}

/** The stored form of an exception (Celery's `exception_to_python` reads it back). */
export interface ExceptionMeta {
  exc_type: string;
  exc_message: unknown[];
  exc_module: string | null;
  [extra: string]: unknown;
}

/** A result meta document. The optional fields are Celery's `result_extended` ones. */
export interface ResultMeta {
  status: TaskState;
  /** The return value (SUCCESS), an {@link ExceptionMeta} (FAILURE, RETRY, REVOKED), or progress. */
  result: unknown;
  traceback: string | null;
  children: unknown[];
  /** Naive UTC ISO time for ready states, else null. */
  date_done: string | null;
  task_id: string;
  name?: string | null;
  args?: unknown[] | null;
  kwargs?: Record<string, unknown> | null;
  worker?: string | null;
  retries?: number | null;
  queue?: string | null;
  /** The task that sent this one, when there is one (Celery stores it with or without extended). */
  parent_id?: string | null;
  root_id?: string | null;
  /** The group the task belongs to, when it does. */
  group_id?: string | null;
  [extra: string]: unknown;
}

/** A stored group (Celery's `celery-taskset-meta-<id>`): the ids of its members' results. */
export interface GroupMeta {
  group_id: string;
  /** Member results, as Celery serializes a GroupResult: `[[id, parent], ...]`-style tuples. */
  result: unknown[];
  date_done?: string | null;
  [extra: string]: unknown;
}

/** Reads an {@link ExceptionMeta} from a stored result, if it is one. */
export function asExceptionMeta(value: unknown): ExceptionMeta | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.exc_type !== 'string') return undefined;
  const message = Array.isArray(v.exc_message)
    ? v.exc_message
    : v.exc_message === undefined
      ? []
      : [v.exc_message];
  return {
    ...v,
    exc_type: v.exc_type,
    exc_message: message,
    exc_module: typeof v.exc_module === 'string' ? v.exc_module : null,
  };
}
