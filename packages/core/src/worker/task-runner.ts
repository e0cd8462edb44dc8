import { ConfigError } from '../errors';
import type { TaskMessage } from '../protocol/task-message';
import { argumentsFromWire } from '../serialization/argument-codec';
import { runInTaskContext, type TaskContext } from '../task/task-context';
import type { TaskDefinition } from '../task/task-definition';
import type { ClassType } from '../task/task-options';
import type { LazyAbort } from './lazy-abort';
import { RetryRequest } from './retry-policy';
import {
  fromThreadOutcome,
  timeLimitsOf,
  withTimeLimits,
  type RunControl,
  type RunOutcome,
} from './task-execution';
import { ThreadPool } from './thread-pool';
import type { ThreadRunRequest } from './thread-protocol';
import type { WorkerOptions } from './worker-options';

/** One run to start: the task, its message and what its context needs. */
export interface RunRequest {
  readonly definition: TaskDefinition;
  readonly message: TaskMessage;
  readonly queue: string;
  readonly redelivered: boolean;
  readonly abort: LazyAbort;
  /** Stores the task's PROGRESS meta (`taskContext().progress()`). */
  progress(meta: unknown): Promise<void>;
}

/** A started run: its outcome, and the levers that stop it. */
export interface Run {
  readonly outcome: Promise<RunOutcome>;
  readonly control: RunControl;
}

/**
 * Runs tasks, on this event loop or in a thread (`isolation: 'thread'`), under their time limits.
 * Builds each run's {@link TaskContext} once; a thread gets its cloneable part.
 */
export class TaskRunner {
  private readonly instances = new Map<ClassType, object>();
  private readonly threads: ThreadPool | undefined;
  /** Time limits set by the `time_limit` command, by task name; they win over the others. */
  private readonly limitOverrides = new Map<string, { softMs?: number; hardMs?: number }>();

  constructor(
    private readonly hostname: string,
    private readonly options: Pick<WorkerOptions, 'instances' | 'resolve' | 'appModule'>,
    private readonly warn: (error: Error) => void,
  ) {
    for (const instance of options.instances ?? []) {
      this.instances.set(instance.constructor as ClassType, instance);
    }
    this.threads = options.appModule ? new ThreadPool(options.appModule) : undefined;
  }

  /** Refuses, with a `ConfigError`, a task this worker could not run. */
  check(definition: TaskDefinition): void {
    if (definition.options.isolation === 'thread') {
      if (!this.options.appModule) throw new ConfigError(needsAppModule(definition));
    } else {
      this.instanceFor(definition);
    }
  }

  /** Starts a run. */
  run(request: RunRequest): Run {
    const { definition, message, abort } = request;
    const context = this.contextOf(request);
    let run: Promise<RunOutcome>;
    let terminate = (): void => undefined;
    if (definition.options.isolation === 'thread' && !this.threads) {
      run = Promise.resolve({ kind: 'error', error: new ConfigError(needsAppModule(definition)) });
    } else if (definition.options.isolation === 'thread') {
      const threadRun = this.threads!.run(
        {
          type: 'run',
          taskName: definition.name,
          args: message.args,
          kwargs: message.kwargs,
          context: cloneablePart(context),
        },
        // In a thread the task does not wait for the store: a failure is reported here instead.
        (meta) => void context.progress(meta).catch(this.warn),
      );
      abort.signal.addEventListener('abort', () => threadRun.abort(abort.signal.reason as Error));
      run = threadRun.outcome.then((outcome) => fromThreadOutcome(message.headers.id, outcome));
      terminate = () => threadRun.terminate();
    } else {
      // JavaScript cannot stop a function from outside: terminating such a run ends it at once
      // as far as the worker goes (its slot is freed, its outcome ignored) while its code may
      // still run until it honours its AbortSignal.
      let stopped = (): void => undefined;
      const terminated = new Promise<RunOutcome>((resolve) => {
        stopped = () => resolve({ kind: 'terminated' });
      });
      const here = this.runHere(definition, message, context).then(
        (value): RunOutcome => ({ kind: 'success', value }),
        (error: unknown): RunOutcome => ({ kind: 'error', error }),
      );
      run = Promise.race([here, terminated]);
      terminate = stopped;
    }
    const control: RunControl = { abort: (reason) => abort.abort(reason), terminate };
    const limits = {
      ...timeLimitsOf(message, definition),
      ...this.limitOverrides.get(definition.name),
    };
    return { outcome: withTimeLimits(message.headers.id, run, control, limits), control };
  }

  /** Sets a task's time limits from its next run on (the `time_limit` command). */
  setTimeLimits(name: string, limits: { softMs?: number; hardMs?: number }): void {
    this.limitOverrides.set(name, limits);
  }

  /** Ends the task threads. */
  async close(): Promise<void> {
    await this.threads?.close();
  }

  private contextOf(request: RunRequest): TaskContext {
    const h = request.message.headers;
    const abort = request.abort;
    return {
      id: h.id,
      name: h.task,
      retries: h.retries,
      attempt: h.retries + 1,
      headers: h,
      get signal() {
        return abort.signal;
      },
      rootId: h.root_id,
      parentId: h.parent_id,
      queue: request.queue,
      redelivered: request.redelivered,
      hostname: this.hostname,
      retry: (options) => {
        throw new RetryRequest(options?.countdownMs, options?.error);
      },
      progress: (meta) => request.progress(meta),
    };
  }

  private async runHere(
    definition: TaskDefinition,
    message: TaskMessage,
    context: TaskContext,
  ): Promise<unknown> {
    const instance = this.instanceFor(definition) as Record<
      string,
      (...args: unknown[]) => unknown
    >;
    return runInTaskContext(context, async () => {
      const args = argumentsFromWire(definition, message.args, message.kwargs);
      return instance[definition.method]!(...args);
    });
  }

  private instanceFor(definition: TaskDefinition): object {
    const cls = definition.target;
    let instance = this.instances.get(cls);
    if (!instance) {
      if (this.options.resolve) {
        instance = this.options.resolve(cls);
      } else if (cls.length > 0) {
        throw new ConfigError(
          `${cls.name} takes constructor arguments: pass an instance in \`instances\` or a \`resolve\` function`,
        );
      } else {
        instance = new cls() as object;
      }
      this.instances.set(cls, instance);
    }
    return instance;
  }
}

/** What of a task's context crosses to its thread; the thread adds the signal and the levers. */
function cloneablePart(context: TaskContext): ThreadRunRequest['context'] {
  const { id, name, retries, headers, rootId, parentId, queue, redelivered, hostname } = context;
  return { id, name, retries, headers, rootId, parentId, queue, redelivered, hostname };
}

function needsAppModule(definition: TaskDefinition): string {
  return `${definition.label} has isolation 'thread': the worker needs \`appModule\`, the module that exports the app (the CLI sets it)`;
}
