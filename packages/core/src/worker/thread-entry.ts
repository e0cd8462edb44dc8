import 'reflect-metadata';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import { UnrecoverableError } from '../errors';
import { exceptionMetaOf, tracebackOf } from '../result/exception-meta';
import { argumentsFromWire, resultToWire } from '../serialization/argument-codec';
import { runInTaskContext } from '../task/task-context';
import { RetryRequest } from './retry-policy';
import { isWorkerHost, type WorkerHost } from './worker-host';
import type {
  ThreadAbortRequest,
  ThreadOutcome,
  ThreadReply,
  ThreadRunRequest,
} from './thread-protocol';

/**
 * A task thread: loads the app module, then runs one task at a time for its worker. The worker
 * terminates the thread to stop a task for good (hard time limit, revoke with terminate).
 */
const port = parentPort!;
const post = (reply: ThreadReply): void => port.postMessage(reply);
let abort: AbortController | undefined;
let app: WorkerHost;
const instances = new Map<unknown, object>();

async function load(): Promise<void> {
  const { appModule } = workerData as { appModule: string };
  const loaded = (await (
    new Function('s', 'return import(s)') as (s: string) => Promise<Record<string, unknown>>
  )(pathToFileURL(appModule).href)) as Record<string, unknown>;
  const found = [
    loaded.app,
    loaded.default,
    (loaded.default as Record<string, unknown> | undefined)?.app,
  ].find(isWorkerHost);
  if (!found) throw new Error(`${appModule} exports no Conveyor app`);
  app = found;
}

async function run(request: ThreadRunRequest): Promise<ThreadOutcome> {
  abort = new AbortController();
  const definition = app.task(request.taskName);
  try {
    if (!definition)
      throw new Error(`task '${request.taskName}' is not in the app module loaded by the thread`);
    let instance = instances.get(definition.target);
    if (!instance) {
      instance = new definition.target() as object;
      instances.set(definition.target, instance);
    }
    const c = request.context;
    const value = await runInTaskContext(
      {
        ...c,
        attempt: c.retries + 1,
        signal: abort.signal,
        retry: (options) => {
          throw new RetryRequest(options?.countdownMs, options?.error);
        },
        progress: async (meta) => post({ type: 'progress', meta }),
      },
      async () => {
        const args = argumentsFromWire(definition, request.args, request.kwargs);
        return (instance as Record<string, (...a: unknown[]) => unknown>)[definition.method]!(
          ...args,
        );
      },
    );
    return { ok: true, value: resultToWire(value) };
  } catch (error) {
    const cause = error instanceof RetryRequest ? (error.error ?? error) : error;
    return {
      ok: false,
      error: exceptionMetaOf(cause),
      traceback: tracebackOf(cause),
      retry: error instanceof RetryRequest ? { countdownMs: error.countdownMs } : undefined,
      unrecoverable: error instanceof UnrecoverableError,
    };
  }
}

port.on('message', (request: ThreadRunRequest | ThreadAbortRequest) => {
  if (request.type === 'abort') {
    const reason = Object.assign(new Error(request.reason.message), { name: request.reason.name });
    abort?.abort(reason);
    return;
  }
  void run(request).then((outcome) => post({ type: 'done', outcome }));
});

load().then(
  () => post({ type: 'ready' }),
  (error: Error) => post({ type: 'loadError', message: error.message }),
);
