import { SoftTimeLimitExceededError, TaskRevokedError, TaskTimeLimitError } from '../errors';
import type { TaskMessage } from '../protocol/task-message';
import { knownRemoteError } from '../result/exception-meta';
import type { TaskDefinition } from '../task/task-definition';
import { RetryRequest } from './retry-policy';
import type { ThreadOutcome } from './thread-protocol';

/** How one run of a task ended. */
export type RunOutcome =
  | { kind: 'success'; value: unknown }
  | { kind: 'error'; error: unknown }
  /** Revoked with `terminate` while running. */
  | { kind: 'terminated' };

/** The effective time limits of a message: its `timelimit` header, else the task's options. */
export function timeLimitsOf(
  message: TaskMessage,
  definition: TaskDefinition,
): { hardMs?: number; softMs?: number } {
  const [hard, soft] = message.headers.timelimit;
  return {
    hardMs: hard !== null ? hard * 1000 : definition.options.timeLimitMs,
    softMs: soft !== null ? soft * 1000 : definition.options.softTimeLimitMs,
  };
}

/** A task run in progress: its outcome and the levers to stop it. */
export interface RunControl {
  /** Fires the task's AbortSignal. */
  abort(reason: Error): void;
  /** Stops the task for good where that is possible (a thread); the signal fires either way. */
  terminate(): void;
}

/**
 * Races a run against its time limits: the soft limit fires the AbortSignal, the hard limit
 * ends the run as a `TaskTimeLimitError` and terminates it where it can.
 */
export function withTimeLimits(
  taskId: string,
  run: Promise<RunOutcome>,
  control: RunControl,
  limits: { hardMs?: number; softMs?: number },
): Promise<RunOutcome> {
  if (limits.softMs === undefined && limits.hardMs === undefined) return run;
  const timers: NodeJS.Timeout[] = [];
  const limited = new Promise<RunOutcome>((resolve) => {
    if (limits.softMs !== undefined) {
      timers.push(
        setTimeout(
          () => control.abort(new SoftTimeLimitExceededError(taskId, limits.softMs!)),
          limits.softMs,
        ),
      );
    }
    if (limits.hardMs !== undefined) {
      timers.push(
        setTimeout(() => {
          const error = new TaskTimeLimitError(taskId, limits.hardMs!);
          control.abort(error);
          control.terminate();
          resolve({ kind: 'error', error });
        }, limits.hardMs),
      );
    }
    void run.then(resolve);
  });
  return limited.finally(() => timers.forEach(clearTimeout));
}

/** Rebuilds a thread's outcome as the worker's. */
export function fromThreadOutcome(
  taskId: string,
  outcome: ThreadOutcome | 'terminated',
): RunOutcome {
  if (outcome === 'terminated') return { kind: 'terminated' };
  if (outcome.ok) return { kind: 'success', value: outcome.value };
  // Celery's own exceptions (a thread that died: WorkerLostError) keep their class and module.
  const known = outcome.retry
    ? undefined
    : knownRemoteError(taskId, outcome.error, outcome.traceback);
  if (known) return { kind: 'error', error: known };
  const error = Object.assign(new Error(String(outcome.error.exc_message[0] ?? '')), {
    name: outcome.error.exc_type,
    stack: outcome.traceback ?? undefined,
    unrecoverable: outcome.unrecoverable,
  });
  return {
    kind: 'error',
    error: outcome.retry ? new RetryRequest(outcome.retry.countdownMs, error) : error,
  };
}

/** The abort reason of a revoke with terminate. */
export function terminatedReason(taskId: string): TaskRevokedError {
  return new TaskRevokedError(taskId, 'terminated');
}
