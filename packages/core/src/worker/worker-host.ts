import type { ResultBackend } from '../backend/result-backend';
import type { ArgumentValidator } from '../serialization/argument-types';
import type { TaskDefinition } from '../task/task-definition';
import type { Transport } from '../transport/transport';
import type { LinkCall } from './canvas-links';

/**
 * What a worker needs from the app it runs for, and nothing more: the worker sees its app only
 * through this, the way `AsyncResult` sees the backend only through `ResultSource`, so `worker/`
 * never imports `app/`. `Conveyor` implements it.
 */
export interface WorkerHost {
  /** The registered tasks. */
  readonly tasks: readonly TaskDefinition[];
  /** The broker. */
  readonly transport: Transport;
  /** The result backend, or undefined when results are off. */
  readonly backend: ResultBackend | undefined;
  /** Whether workers store Celery's extended result fields. */
  readonly resultExtended: boolean;
  /** The registered task of that name. */
  task(name: string): TaskDefinition | undefined;
  /**
   * Sends a task a message's canvas links ask for (a chain's next step, callbacks, errbacks),
   * with the task's own options and queue when it is registered. Resolves with its id.
   */
  sendCall(call: LinkCall): Promise<string>;
  /** Declares a queue once, the same way producers do. */
  ensureQueue(name: string): Promise<void>;
  /** Closes the broker and backend connections (after a forced shutdown). */
  close(): Promise<unknown>;
  /** The DTO check of `validate: true` (class-validator), when the app asked for it. */
  readonly validateArguments?: ArgumentValidator;
}

/**
 * Whether a module export is a host a task thread can run tasks from. Structural, so the thread
 * entry needs no import of `Conveyor`.
 */
export function isWorkerHost(value: unknown): value is WorkerHost {
  if (typeof value !== 'object' || value === null) return false;
  const host = value as Partial<Record<keyof WorkerHost, unknown>>;
  return (
    typeof host.task === 'function' &&
    typeof host.sendCall === 'function' &&
    Array.isArray(host.tasks)
  );
}
