import { EXIT_FORCED, EXIT_GRACEFUL } from '../defaults';
import type { Worker } from '../worker/worker';
import type { WorkerEvents } from '../worker/worker-events';
import type { WorkerLogger } from './worker-logger';

/**
 * Logs what a worker does, one line per event, in the words of Celery's worker log: each task
 * received, succeeded (with its runtime), failed (with the error), retried, revoked, and each
 * message dead-lettered; its stop (warm, or cold when a second signal forces it) and how that
 * ended, as a warning when running tasks were aborted; trouble the worker survived as warnings.
 * Every record also carries the event's fields (`event`, `id`, `name`, `runtimeMs`, …) for JSON
 * output. Returns the function that stops logging.
 */
export function logWorker(worker: Worker, logger: WorkerLogger): () => void {
  const listeners: { [E in keyof WorkerEvents]: (...args: WorkerEvents[E]) => void } = {
    'task-received': (e) =>
      logger.info({ event: 'task-received', ...e }, `Task ${e.name}[${e.id}] received`),
    'task-started': (e) =>
      logger.debug({ event: 'task-started', ...e }, `Task ${e.name}[${e.id}] started`),
    'task-succeeded': (e) =>
      logger.info(
        { event: 'task-succeeded', ...e },
        `Task ${e.name}[${e.id}] succeeded in ${seconds(e.runtimeMs)}`,
      ),
    'task-failed': ({ error, ...e }) =>
      logger.error(
        { event: 'task-failed', ...e, err: error },
        `Task ${e.name}[${e.id}] failed in ${seconds(e.runtimeMs)}: ${describeError(error)}`,
      ),
    'task-retried': ({ error, ...e }) =>
      logger.info(
        { event: 'task-retried', ...e, err: error },
        `Task ${e.name}[${e.id}] retry ${e.retries ?? '?'} in ${seconds(e.retryInMs)}: ${describeError(error)}`,
      ),
    'task-revoked': ({ error, ...e }) =>
      logger.info(
        { event: 'task-revoked', ...e, ...(error === undefined ? {} : { err: error }) },
        `Task ${e.name}[${e.id}] revoked${e.reason ? `: ${e.reason}` : ''}`,
      ),
    'message-rejected': (e) =>
      logger.debug(
        { event: 'message-rejected', ...e },
        `Message ${e.id ?? '(no id)'} from ${e.queue} refused: ${e.reason}`,
      ),
    'message-dead-lettered': (e) =>
      logger.warn(
        { event: 'message-dead-lettered', ...e },
        `Message ${e.id ?? '(no id)'} dead-lettered to ${e.queue}.dead: ${e.reason}`,
      ),
    'result-stored': (e) =>
      e.stored
        ? logger.debug(
            { event: 'result-stored', ...e },
            `Task ${e.id} ${e.state} stored in ${seconds(e.durationMs)}`,
          )
        : logger.warn(
            { event: 'result-stored', ...e },
            `Task ${e.id} ${e.state} could not be stored in ${seconds(e.durationMs)}`,
          ),
    'broker-reconnected': (e) =>
      logger.info(
        { event: 'broker-reconnected', ...e },
        `Broker ${e.connection} connection re-established`,
      ),
    'worker-stopping': (e) =>
      e.forced
        ? logger.warn(
            { event: 'worker-stopping', ...e },
            `Cold shutdown: aborting ${count(e.running, 'running task')} at once`,
          )
        : logger.info(
            { event: 'worker-stopping', ...e },
            `Warm shutdown: waiting for ${count(e.running, 'running task')} (timeout ${e.timeoutMs} ms)`,
          ),
    'worker-stopped': (e) => {
      const unstarted =
        e.unstarted > 0 ? `; ${count(e.unstarted, 'unstarted message')} given back` : '';
      if (e.aborted === 0 && e.exitCode === EXIT_GRACEFUL) {
        logger.info({ event: 'worker-stopped', ...e }, `Stopped (exit code 0)${unstarted}`);
        return;
      }
      const why = e.exitCode === EXIT_FORCED ? 'by a forced stop' : 'past the shutdown timeout';
      const lost = e.aborted - e.requeued;
      logger.warn(
        { event: 'worker-stopped', ...e },
        `Stopped (exit code ${e.exitCode}): ${count(e.aborted, 'running task')} aborted ${why}, ` +
          `${e.requeued} requeued${lost > 0 ? `, ${lost} lost (acked early)` : ''}${unstarted}`,
      );
    },
    'worker-error': (error) =>
      logger.warn({ event: 'worker-error', err: error }, describeError(error)),
  };
  const names = Object.keys(listeners) as Array<keyof WorkerEvents>;
  for (const name of names) worker.on(name, listeners[name] as never);
  return () => {
    for (const name of names) worker.off(name, listeners[name] as never);
  };
}

/** `1 running task`, `2 running tasks`. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** `0.012s`, as Celery prints runtimes. */
function seconds(ms: number | undefined): string {
  return ms === undefined ? '?s' : `${(ms / 1000).toFixed(3)}s`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
