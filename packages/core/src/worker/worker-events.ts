/** Payload of the task lifecycle events a worker emits. */
export interface TaskEvent {
  /** Task id. */
  id: string;
  /** Task name. */
  name: string;
  /** Milliseconds the task ran (succeeded, failed). */
  runtimeMs?: number;
  /** The error (failed, revoked). */
  error?: unknown;
  /** Why (revoked). */
  reason?: string;
  /** Delay before the next attempt (retried). */
  retryInMs?: number;
  /** Retries so far, this one included (retried). */
  retries?: number;
  /** The broker delivered this message before and it was not acknowledged (received). */
  redelivered?: boolean;
}

/** Payload of `message-rejected`: a message dead-lettered without running. */
export interface RejectedMessageEvent {
  /** The task id, when the message had a readable one. */
  id?: string;
  /** Why it was refused; the same text is on the dead-lettered message. */
  reason: string;
  queue: string;
}

/**
 * Why a message was dead-lettered, as a closed set (the free text is in `reason`):
 * `malformed` (unreadable, too large, bad headers), `unregistered` (no such task here),
 * `unsupported` (a canvas the worker cannot follow), `retries-exhausted`, `delivery-limit`
 * (delivered `maxDeliveries` times without completing), `unpublishable` (a retry, delay or link
 * the broker refused for good).
 */
export type DeadLetterKind =
  | 'malformed'
  | 'unregistered'
  | 'unsupported'
  | 'retries-exhausted'
  | 'delivery-limit'
  | 'unpublishable';

/** Payload of `message-dead-lettered`: a message moved to `<queue>.dead`. */
export interface DeadLetterEvent {
  /** The task id, when the message had a readable one. */
  id?: string;
  /** The task name, when the message had a readable one. */
  name?: string;
  /** The task queue it came from. */
  queue: string;
  kind: DeadLetterKind;
  /** The text in the dead letter's `x-conveyor-dead-letter-reason` header. */
  reason: string;
}

/** Payload of `result-stored`: one write of a task's state to the result backend. */
export interface ResultStoredEvent {
  id: string;
  /** The state written (`STARTED`, `PROGRESS`, `RETRY`, `SUCCESS`, `FAILURE`, `REVOKED`). */
  state: string;
  /** From the first attempt until stored or given up, retries included. */
  durationMs: number;
  /** False when the worker gave up (the message then goes back to the queue). */
  stored: boolean;
}

/** Payload of `broker-reconnected`. */
export interface ReconnectEvent {
  /** Which of the transport's connections came back (`publisher`, `consumer`). */
  connection: string;
}

/** Payload of `worker-stopping`: a stop began; no new task starts from now on. */
export interface WorkerStoppingEvent {
  /** Tasks running as the stop began. */
  running: number;
  /**
   * Milliseconds the running tasks get to finish before they are aborted and requeued: the
   * worker's `shutdownTimeoutMs`, or 0 for a forced stop.
   */
  timeoutMs: number;
  /** A forced stop (a second signal): running tasks are aborted at once. */
  forced: boolean;
}

/** Payload of `worker-stopped`: the stop is over. */
export interface WorkerStoppedEvent {
  /**
   * The code {@link Worker.stop} resolves with, which a worker that owns its process exits with:
   * `EXIT_GRACEFUL` (0) every running task finished, `EXIT_SHUTDOWN_TIMEOUT` (1) some outlived the
   * shutdown timeout, `EXIT_FORCED` (2) a second signal cut the stop short.
   */
  exitCode: number;
  /** Running tasks aborted, past the shutdown timeout or by a forced stop. */
  aborted: number;
  /**
   * Messages of the aborted tasks given back to their queue, to run again; fewer than `aborted`
   * when some were acked before they ran (`acks: 'early'`) and are lost.
   */
  requeued: number;
  /**
   * Messages the worker received but did not start, given back: waiting for a slot or their
   * rate limit, or delivered after the stop began (before its consumers were cancelled).
   */
  unstarted: number;
}

/** The events of a {@link Worker}, with their payloads. */
export interface WorkerEvents {
  'task-received': [TaskEvent];
  'task-started': [TaskEvent];
  'task-succeeded': [TaskEvent];
  'task-failed': [TaskEvent];
  'task-retried': [TaskEvent];
  'task-revoked': [TaskEvent];
  'message-rejected': [RejectedMessageEvent];
  /** A message moved to its dead-letter queue (rejected input, or a task out of retries). */
  'message-dead-lettered': [DeadLetterEvent];
  /** A task state written to the result backend, or given up on. */
  'result-stored': [ResultStoredEvent];
  /** The transport reconnected to the broker after losing a connection. */
  'broker-reconnected': [ReconnectEvent];
  /** A stop began (`stop()`, a signal, the `shutdown` command, or a second signal forcing it). */
  'worker-stopping': [WorkerStoppingEvent];
  /** The stop is over, once: with its exit code and what it did to unfinished tasks. */
  'worker-stopped': [WorkerStoppedEvent];
  /**
   * Trouble the worker survived (a failed ack, a result it could not store), and what its
   * transport and result backend recovered from in the background (their `onBackgroundError`);
   * for logging.
   */
  'worker-error': [Error];
}
