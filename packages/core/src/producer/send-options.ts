/** Options of one task call: `applyAsync(args, options)`, `app.send(name, args, options)`. */
export interface SendOptions {
  /**
   * The task id.
   * @defaultValue a new UUID
   */
  taskId?: string;
  /**
   * Queue to send to.
   * @defaultValue the task's queue
   */
  queue?: string;
  /** Run no earlier than this many ms from now. The message waits in the broker. */
  countdownMs?: number;
  /** Run no earlier than this time. The message waits in the broker. */
  eta?: Date;
  /** Do not run after this time (a Date), or after this many ms from now (a number). */
  expires?: Date | number;
  /** Message priority (0-255), honoured on priority queues. @defaultValue the task's priority */
  priority?: number;
  /** Hard time limit for this call. @defaultValue the task's */
  timeLimitMs?: number;
  /** Soft time limit for this call. @defaultValue the task's */
  softTimeLimitMs?: number;
  /** Store no result for this call. @defaultValue the task's `ignoreResult` */
  ignoreResult?: boolean;
  /** Keyword arguments, for tasks that take them (Python tasks, or parameters by name). */
  kwargs?: Record<string, unknown>;
  /** Name to show in logs and monitors instead of the task name (Celery's `shadow`). */
  shadow?: string;
}
