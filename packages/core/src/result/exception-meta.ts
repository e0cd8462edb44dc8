import {
  NotRegisteredError,
  SoftTimeLimitExceededError,
  TaskFailedError,
  TaskRevokedError,
  TaskTimeLimitError,
  WorkerLostError,
  type ConveyorError,
} from '../errors';
import { asExceptionMeta, type ExceptionMeta, type ResultMeta } from '../protocol/result-meta';

/**
 * How a JavaScript error is stored, in Celery's shape. `exc_module` is left null for JavaScript
 * errors: Celery then makes an exception class of that name when it reads the result, so a
 * Python caller catches it by type name and reads its message. Conveyor's time-limit and
 * worker-lost errors (subclasses of TaskFailedError) are stored as Celery's own classes, with
 * their modules, so Python's `except TimeLimitExceeded` catches them.
 */
export function exceptionMetaOf(error: unknown): ExceptionMeta {
  if (error instanceof TaskFailedError) {
    return { exc_type: error.excType, exc_message: error.excMessage, exc_module: error.excModule };
  }
  if (error instanceof Error) {
    const ctorName = error.constructor?.name;
    const type = error.name && error.name !== 'Error' ? error.name : ctorName || 'Error';
    return { exc_type: type, exc_message: [error.message], exc_module: null };
  }
  return { exc_type: 'Error', exc_message: [String(error)], exc_module: null };
}

/** The stack to store as the result's `traceback`. */
export function tracebackOf(error: unknown): string | null {
  if (error instanceof TaskFailedError && error.remoteTraceback) return error.remoteTraceback;
  return error instanceof Error && error.stack ? error.stack : null;
}

/** The error `get()` raises for a FAILURE or REVOKED meta. */
export function errorFromMeta(meta: ResultMeta): ConveyorError {
  const exc = asExceptionMeta(meta.result);
  if (meta.status === 'REVOKED') {
    const reason = exc ? String(exc.exc_message[0] ?? exc.exc_type) : 'revoked';
    return new TaskRevokedError(meta.task_id, reason);
  }
  if (!exc) {
    return new TaskFailedError(meta.task_id, {
      excType: 'Error',
      excMessage: [typeof meta.result === 'string' ? meta.result : JSON.stringify(meta.result)],
      excModule: null,
      traceback: meta.traceback,
    });
  }
  const known = knownRemoteError(meta.task_id, exc, meta.traceback);
  if (known) return known;
  return new TaskFailedError(meta.task_id, {
    excType: exc.exc_type,
    excMessage: exc.exc_message,
    excModule: exc.exc_module,
    traceback: meta.traceback,
  });
}

/** Modules of the Celery exceptions Conveyor has classes for (Celery re-exports billiard's). */
const CELERY_MODULES: ReadonlySet<string | null> = new Set([
  'billiard.exceptions',
  'celery.exceptions',
]);

/**
 * Conveyor's class for one of Celery's own exceptions, stored by a Python or a Conveyor worker:
 * `NotRegistered`, `TimeLimitExceeded`, `SoftTimeLimitExceeded`, `WorkerLostError`.
 */
export function knownRemoteError(
  taskId: string,
  exc: ExceptionMeta,
  traceback: string | null,
): TaskFailedError | undefined {
  const first = exc.exc_message[0];
  // An old Conveyor stored NotRegistered with its module; Python always does.
  if (exc.exc_type === 'NotRegistered') {
    return new NotRegisteredError(taskId, String(first ?? ''), traceback);
  }
  if (!CELERY_MODULES.has(exc.exc_module)) return undefined;
  const limitMs = typeof first === 'number' ? first * 1000 : Number.NaN;
  switch (exc.exc_type) {
    case 'TimeLimitExceeded':
      return new TaskTimeLimitError(taskId, limitMs, traceback);
    case 'SoftTimeLimitExceeded':
      return new SoftTimeLimitExceededError(taskId, limitMs, traceback);
    case 'WorkerLostError':
      return new WorkerLostError(taskId, exc.exc_message, traceback);
    default:
      return undefined;
  }
}
