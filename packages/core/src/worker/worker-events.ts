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
}

/** Payload of `message-rejected`: a message dead-lettered without running. */
export interface RejectedMessageEvent {
  /** The task id, when the message had a readable one. */
  id?: string;
  /** Why it was refused; the same text is on the dead-lettered message. */
  reason: string;
  queue: string;
}

/** Payload of `message-dead-lettered`: a message moved to its queue's dead-letter queue. */
export interface DeadLetterEvent {
  /** The task id, when the message had a readable one. */
  id?: string;
  /** The reason, as written in the dead-lettered message's header. */
  reason: string;
  /** The queue it came from (it now sits in `<queue>.dead`). */
  queue: string;
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
  /** Any message the worker dead-lettered: rejected unread, unknown, or out of retries. */
  'message-dead-lettered': [DeadLetterEvent];
  /**
   * Trouble the worker survived (a failed ack, a result it could not store), and what its
   * transport and result backend recovered from in the background (their `onBackgroundError`);
   * for logging.
   */
  'worker-error': [Error];
}
