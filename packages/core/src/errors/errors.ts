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
 * The task's message was delivered `maxDeliveries` times without any run completing: each time,
 * the worker running it died (a crash, OOM, `process.exit`) or gave it back. The message was
 * dead-lettered. Stored as Celery stores a lost worker (`WorkerLostError`, module
 * `billiard.exceptions`), so Python reads the same class.
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

/** The task ran past its hard time limit; the worker failed it and freed the slot. */
export class TaskTimeLimitError extends ConveyorError {
  constructor(
    /** Id of the task that ran too long. */
    readonly taskId: string,
    /** Its hard time limit. */
    readonly limitMs: number,
  ) {
    super(
      'CONVEYOR_ERR_TIME_LIMIT',
      `task ${taskId} exceeded its hard time limit of ${limitMs} ms`,
    );
  }
}

/** The reason of a task's AbortSignal when its soft time limit passes: time to clean up. */
export class SoftTimeLimitExceededError extends ConveyorError {
  constructor(
    /** Id of the task asked to stop. */
    readonly taskId: string,
    /** Its soft time limit. */
    readonly limitMs: number,
  ) {
    super(
      'CONVEYOR_ERR_SOFT_TIME_LIMIT',
      `task ${taskId} exceeded its soft time limit of ${limitMs} ms`,
    );
  }
}
