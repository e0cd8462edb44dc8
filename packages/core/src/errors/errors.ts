/**
 * The closed catalogue of errors that Conveyor raises. Every class carries a stable `code`
 * (listed in docs/errors.md) so callers can branch on it without string matching.
 */

/** Stable error codes, one per error family. */
export type ConveyorErrorCode =
  | 'CONVEYOR_ERR_CONFIG'
  | 'CONVEYOR_ERR_SERIALIZATION'
  | 'CONVEYOR_ERR_MESSAGE_DECODE'
  | 'CONVEYOR_ERR_NOT_REGISTERED'
  | 'CONVEYOR_ERR_WORKER_LOST'
  | 'CONVEYOR_ERR_TASK_FAILED'
  | 'CONVEYOR_ERR_TIMEOUT'
  | 'CONVEYOR_ERR_TASK_REVOKED'
  | 'CONVEYOR_ERR_CONNECTION'
  | 'CONVEYOR_ERR_UNROUTABLE'
  | 'CONVEYOR_ERR_UNRECOVERABLE'
  | 'CONVEYOR_ERR_TIME_LIMIT'
  | 'CONVEYOR_ERR_SOFT_TIME_LIMIT';

/** Base class of every error Conveyor throws. */
export class ConveyorError extends Error {
  /** Stable machine-readable code. */
  readonly code: ConveyorErrorCode;

  constructor(code: ConveyorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The app, a task declaration or an option is invalid. Raised when the app is built. */
export class ConfigError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONVEYOR_ERR_CONFIG', message, options);
  }
}

/** A value cannot be sent as JSON. `path` names where, e.g. `args[1].owner.callback`. */
export class SerializationError extends ConveyorError {
  constructor(
    /** Where in the arguments or result the offending value sits. */
    readonly path: string,
    /** What is wrong with it. */
    readonly reason: string,
  ) {
    super('CONVEYOR_ERR_SERIALIZATION', `cannot serialize ${path}: ${reason}`);
  }
}

/** A message from the broker is not a valid Celery protocol v2 task message. */
export class MessageDecodeError extends ConveyorError {
  constructor(
    /** Why the message was refused; also written on the dead-lettered message. */
    readonly reason: string,
    /** The task id, when it could be read from the message. */
    readonly taskId?: string,
  ) {
    super('CONVEYOR_ERR_MESSAGE_DECODE', `malformed task message: ${reason}`);
  }
}

/** Details of an exception raised by a task, as Celery stores them. */
export interface RemoteExceptionInfo {
  /** Class name of the remote exception, e.g. `ValueError` or `TypeError`. */
  excType: string;
  /** The exception's arguments; for JavaScript errors, `[message]`. */
  excMessage: unknown[];
  /** Module of the remote exception class (`builtins` for Python built-ins). */
  excModule: string | null;
  /** The remote stack trace, as stored in the result's `traceback`. */
  traceback: string | null;
}

/** The task ran and failed. Carries the remote exception's type, message and stack. */
export class TaskFailedError extends ConveyorError {
  /** Class name of the remote exception (`ValueError`, `InventoryError`). */
  readonly excType: string;
  /** The remote exception's arguments; for a JavaScript error, `[message]`. */
  readonly excMessage: unknown[];
  /** Module of the remote exception class (`builtins` for Python's); null for JavaScript. */
  readonly excModule: string | null;
  /** The remote stack: a Python traceback or a JavaScript stack, or null. */
  readonly remoteTraceback: string | null;

  constructor(
    /** Id of the failed task. */
    readonly taskId: string,
    info: RemoteExceptionInfo,
    code: ConveyorErrorCode = 'CONVEYOR_ERR_TASK_FAILED',
  ) {
    super(code, `task ${taskId} failed: ${info.excType}: ${formatExcMessage(info.excMessage)}`);
    this.excType = info.excType;
    this.excMessage = info.excMessage;
    this.excModule = info.excModule;
    this.remoteTraceback = info.traceback;
  }
}

/** No task of that name is registered on the worker that received it. */
export class NotRegisteredError extends TaskFailedError {
  constructor(taskId: string, taskName: string, traceback: string | null = null) {
    super(
      taskId,
      {
        excType: 'NotRegistered',
        excMessage: [taskName],
        excModule: 'celery.exceptions',
        traceback,
      },
      'CONVEYOR_ERR_NOT_REGISTERED',
    );
  }
}

/**
 * What ran the task died under it. The task's message was delivered `maxDeliveries` times
 * without any run completing (each time the worker running it died, a crash, OOM,
 * `process.exit`, or gave it back; the message was dead-lettered); or its task thread exited
 * (`isolation: 'thread'`); or a Celery pool process running it was killed. Stored as Celery
 * stores a lost worker (`WorkerLostError`, module `billiard.exceptions`), so Python reads and
 * catches the same class, and `get()` reads Python's as this.
 */
export class WorkerLostError extends TaskFailedError {
  constructor(
    taskId: string,
    /** The exception's arguments: `['delivered N times without completing']` from Conveyor. */
    excMessage: unknown[],
    traceback: string | null = null,
  ) {
    super(
      taskId,
      {
        excType: 'WorkerLostError',
        excMessage,
        excModule: 'billiard.exceptions',
        traceback,
      },
      'CONVEYOR_ERR_WORKER_LOST',
    );
  }
}

/** Waiting for a result took longer than allowed. */
export class TimeoutError extends ConveyorError {
  constructor(
    /** Id of the task waited for. */
    readonly taskId: string,
    /** The last state known when the wait gave up. */
    readonly lastState: string,
    /** How long the wait lasted. */
    readonly timeoutMs: number,
  ) {
    super(
      'CONVEYOR_ERR_TIMEOUT',
      `timed out after ${timeoutMs} ms waiting for task ${taskId} (last known state: ${lastState})`,
    );
  }
}

/** The task was revoked (or expired) and will not run. */
export class TaskRevokedError extends ConveyorError {
  constructor(
    /** Id of the revoked task. */
    readonly taskId: string,
    /** `revoked`, `terminated` or `expired`. */
    readonly reason: string,
  ) {
    super('CONVEYOR_ERR_TASK_REVOKED', `task ${taskId} was revoked: ${reason}`);
  }
}

/** The broker or result store cannot be reached, or a connection was lost mid-operation. */
export class ConnectionError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONVEYOR_ERR_CONNECTION', message, options);
  }
}

/** The broker could not route a published task to any queue. */
export class UnroutableError extends ConveyorError {
  constructor(
    /** Exchange the message was published to. */
    readonly exchange: string,
    /** Routing key that matched no binding. */
    readonly routingKey: string,
  ) {
    super(
      'CONVEYOR_ERR_UNROUTABLE',
      `message to exchange '${exchange}' with routing key '${routingKey}' was returned unroutable`,
    );
  }
}

function formatExcMessage(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  try {
    return JSON.stringify(args);
  } catch {
    return String(args);
  }
}

/**
 * Throw it (or a subclass) from a task to fail at once: automatic retries never retry it.
 */
export class UnrecoverableError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONVEYOR_ERR_UNRECOVERABLE', message, options);
  }
}

/**
 * The task ran past its hard time limit; the worker failed it and freed the slot. Stored as
 * Celery stores it (`billiard.exceptions.TimeLimitExceeded`, with the limit in seconds), so a
 * Python caller's `except TimeLimitExceeded` catches it; a Python task's is read back as this.
 */
export class TaskTimeLimitError extends TaskFailedError {
  constructor(
    taskId: string,
    /** Its hard time limit. */
    readonly limitMs: number,
    /** The stored stack, when read from a result. */
    traceback: string | null = null,
  ) {
    super(
      taskId,
      billiardLimit('TimeLimitExceeded', limitMs, traceback),
      'CONVEYOR_ERR_TIME_LIMIT',
    );
    this.message = `task ${taskId} exceeded its hard time limit${limitText(limitMs)}`;
  }
}

/**
 * The reason of a task's AbortSignal when its soft time limit passes: time to clean up. A task
 * that throws it is stored as `billiard.exceptions.SoftTimeLimitExceeded`, as Celery's are.
 */
export class SoftTimeLimitExceededError extends TaskFailedError {
  constructor(
    taskId: string,
    /** Its soft time limit. */
    readonly limitMs: number,
    /** The stored stack, when read from a result. */
    traceback: string | null = null,
  ) {
    super(
      taskId,
      billiardLimit('SoftTimeLimitExceeded', limitMs, traceback),
      'CONVEYOR_ERR_SOFT_TIME_LIMIT',
    );
    this.message = `task ${taskId} exceeded its soft time limit${limitText(limitMs)}`;
  }
}

/** A time limit stored as billiard's exception, its argument the limit in seconds (none if NaN). */
function billiardLimit(
  excType: string,
  limitMs: number,
  traceback: string | null,
): RemoteExceptionInfo {
  const excMessage = Number.isFinite(limitMs) ? [limitMs / 1000] : [];
  return { excType, excMessage, excModule: 'billiard.exceptions', traceback };
}

function limitText(limitMs: number): string {
  return Number.isFinite(limitMs) ? ` of ${limitMs} ms` : '';
}
