import {
  NotRegisteredError,
  WorkerLostError,
  TaskFailedError,
  TaskRevokedError,
  type ConveyorError,
} from '../errors';
import { asExceptionMeta, type ExceptionMeta, type ResultMeta } from '../protocol/result-meta';

/**
 * How a JavaScript error is stored, in Celery's shape. `exc_module` is left null for JavaScript
 * errors: Celery then makes an exception class of that name when it reads the result, so a
 * Python caller catches it by type name and reads its message.
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
  if (exc.exc_type === 'NotRegistered') {
    return new NotRegisteredError(meta.task_id, String(exc.exc_message[0] ?? ''), meta.traceback);
  }
  if (exc.exc_type === 'WorkerLostError') {
    return new WorkerLostError(meta.task_id, exc.exc_message, meta.traceback);
  }
  return new TaskFailedError(meta.task_id, {
    excType: exc.exc_type,
    excMessage: exc.exc_message,
    excModule: exc.exc_module,
    traceback: meta.traceback,
  });
}
