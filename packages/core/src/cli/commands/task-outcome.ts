import type { Conveyor } from '../../app/conveyor';
import { DEFAULT_GET_TIMEOUT_MS } from '../../defaults';
import { ConfigError, TimeoutError } from '../../errors';
import type { ResultMeta } from '../../protocol/result-meta';
import { CommandExit } from '../command-exit';
import type { CommandIo } from '../command-io';
import { printJson, type CommandContext } from './app-command';

/** Exit code of `call --wait` and `result` for a task that ended FAILURE or REVOKED. */
export const EXIT_TASK_FAILED = 1;
/** Exit code of `call --wait` and `result --wait` when the wait timed out (EX_TEMPFAIL). */
export const EXIT_WAIT_TIMEOUT = 75;

/** The help of `--timeout` of `call` and `result`: `--wait` waits as long as `get()` does. */
export const WAIT_TIMEOUT_HELP = `how long --wait waits (default: the app's getTimeoutMs, ${DEFAULT_GET_TIMEOUT_MS / 1000} unless it sets one)`;

/** How to show a task's outcome. */
export interface OutcomeOptions {
  wait?: boolean;
  timeoutMs?: number;
  json?: boolean;
  traceback?: boolean;
}

/** What `--json` prints for a task. */
export interface TaskOutcome {
  id: string;
  state: string;
  /** The result (SUCCESS), the exception meta (FAILURE, REVOKED), or the progress meta. */
  result?: unknown;
  traceback?: string | null;
}

/**
 * Shows task `id`'s state and what it stored, after waiting for it to finish if `wait`.
 * Ends with {@link EXIT_TASK_FAILED} for FAILURE or REVOKED, {@link EXIT_WAIT_TIMEOUT} when
 * the wait ran out.
 */
export async function reportOutcome(
  context: CommandContext,
  io: CommandIo,
  id: string,
  options: OutcomeOptions,
): Promise<void> {
  const { app, print, paint } = context;
  const backend = requireBackend(app);
  if (options.wait) {
    try {
      await app.result(id).get({ timeoutMs: options.timeoutMs, propagate: false });
    } catch (error) {
      if (!(error instanceof TimeoutError)) throw error;
      throw new CommandExit(EXIT_WAIT_TIMEOUT, `task ${id}: ${error.message}`);
    }
  }
  const meta: ResultMeta | undefined = await backend.get(id);
  const outcome: TaskOutcome = {
    id,
    state: meta?.status ?? 'PENDING',
    ...(meta && { result: meta.result }),
    ...(meta?.traceback && { traceback: meta.traceback }),
  };
  if (options.json) {
    printJson(io, outcome);
  } else {
    const style =
      outcome.state === 'SUCCESS' ? 'green' : outcome.state === 'FAILURE' ? 'red' : 'yellow';
    print(`${id} ${paint(outcome.state, style)}`);
    if (outcome.state === 'FAILURE' || outcome.state === 'REVOKED') {
      print(describeException(outcome.result));
      if (options.traceback && outcome.traceback) print(outcome.traceback.trimEnd());
    } else if (meta) {
      print(JSON.stringify(outcome.result));
    }
  }
  if (outcome.state === 'FAILURE' || outcome.state === 'REVOKED') {
    throw new CommandExit(EXIT_TASK_FAILED, `task ${id} ended ${outcome.state}`);
  }
}

function requireBackend(app: Conveyor) {
  if (!app.backend) throw new ConfigError('the app has no result backend: results cannot be read');
  return app.backend;
}

/** `ValueError: boom` from Celery's exception meta. */
function describeException(result: unknown): string {
  const meta = (result ?? {}) as { exc_type?: unknown; exc_message?: unknown };
  const message = Array.isArray(meta.exc_message)
    ? meta.exc_message.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(', ')
    : JSON.stringify(meta.exc_message ?? '');
  return `${String(meta.exc_type ?? 'Error')}: ${message}`;
}
