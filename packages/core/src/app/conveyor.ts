import { hostname as osHostname } from 'node:os';
import type { ResultBackend } from '../backend/result-backend';
import { Signature } from '../canvas/signature';
import type { ClientOf, TaskProxy } from '../client/task-client';
import { DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_GET_TIMEOUT_MS, DEFAULT_QUEUE } from '../defaults';
import { Control } from '../control/control-client';
import { ConfigError } from '../errors';
import { AppEvents } from '../events/app-events';
import { EventDispatcher } from '../events/event-dispatcher';
import { requireCapability } from '../capability/capability';
import { MemoryResultBackend } from '../memory/memory-result-backend';
import { MemoryTransport } from '../memory/memory-transport';
import { celeryDateDone } from '../protocol/celery-time';
import { CONTROL_EXCHANGE, encodeRevoke } from '../protocol/control-message';
import { AsyncResult, type RevokeOptions } from '../result/async-result';
import { argsToWire, kwargsToWire, resultFromWire } from '../serialization/argument-codec';
import type { ArgumentValidator } from '../serialization/argument-types';
import { classValidatorOf } from '../serialization/argument-validation';
import type { TaskDefinition } from '../task/task-definition';
import { TaskExplorer } from '../task/task-explorer';
import type { ClassType } from '../task/task-options';
import type { QueueDeclaration, Transport } from '../transport/transport';
import { Worker } from '../worker/worker';
import type { WorkerHost } from '../worker/worker-host';
import type { WorkerOptions } from '../worker/worker-options';
import { closeParts, type CloseReport } from './close-report';
import type { ConveyorOptions } from './conveyor-options';
import { Producer, type TaskCall } from '../producer/producer';
import type { SendOptions } from '../producer/send-options';

/**
 * A Conveyor app: the registered tasks, the broker and the result backend. Web nodes use it to
 * send tasks (`client()`, `send()`), worker nodes to run them (`worker()`); one process may do
 * both. Declaration mistakes are refused here, with a `ConfigError`.
 */
export class Conveyor implements WorkerHost {
  /** The broker. */
  readonly transport: Transport;
  /** The result backend, or undefined when results are off. */
  readonly backend: ResultBackend | undefined;
  /** The queue of tasks that name none. */
  readonly defaultQueue: string;
  /** Whether workers store Celery's extended result fields. */
  readonly resultExtended: boolean;
  /** Declarations of queues that need more than a name. */
  readonly queueDeclarations: ReadonlyMap<string, QueueDeclaration>;
  /** Celery events on this app's broker: receivers and the cluster state. */
  readonly events: AppEvents;
  /** @internal The class-validator check of `validate: true`, used by producers and workers. */
  readonly validateArguments: ArgumentValidator | undefined;
  private readonly definitions = new Map<string, TaskDefinition>();
  private remoteControl?: Control;
  /** The workers made by {@link worker}, which {@link close} stops first. */
  private readonly workers = new Set<Worker>();
  private closing?: Promise<CloseReport>;
  private readonly producer: Producer;
  private readonly getTimeoutMs: number;

  constructor(options: ConveyorOptions = {}) {
    this.defaultQueue = options.defaultQueue ?? DEFAULT_QUEUE;
    if (this.defaultQueue.trim() === '') throw new ConfigError('defaultQueue must not be empty');
    this.transport = options.broker ?? new MemoryTransport();
    this.backend =
      options.backend === null ? undefined : (options.backend ?? new MemoryResultBackend());
    this.getTimeoutMs = options.getTimeoutMs ?? DEFAULT_GET_TIMEOUT_MS;
    this.resultExtended = options.resultExtended ?? false;
    this.validateArguments = options.validate ? classValidatorOf() : undefined;
    this.queueDeclarations = new Map((options.queues ?? []).map((q) => [q.name, q]));
    for (const definition of new TaskExplorer(this.defaultQueue).explore(options.tasks ?? [])) {
      this.definitions.set(definition.name, definition);
    }
    const sentEvents = options.taskSentEvents
      ? new EventDispatcher(
          requireCapability(
            this.transport,
            'exchanges',
            'taskSentEvents',
            '@conveyor/amqp-transport (or the memory transport)',
          ),
          {
            hostname: `gen${process.pid}@${osHostname()}`,
            groups: ['task'],
          },
        )
      : undefined;
    this.producer = new Producer(
      this.transport,
      this.queueDeclarations,
      this.backend ?? undefined,
      options.maxBodyBytes,
      sentEvents,
    );
    this.events = new AppEvents(this.transport);
  }

  /**
   * Remote control of the workers on this app's broker, Conveyor's and Python Celery's alike
   * (Celery's `app.control`): `inspect()`, `ping()`, `rateLimit()`, `poolGrow()`...
   */
  get control(): Control {
    this.remoteControl ??= new Control(this.transport);
    return this.remoteControl;
  }

  /** The registered tasks. */
  get tasks(): readonly TaskDefinition[] {
    return [...this.definitions.values()];
  }

  /** The registered task of that name. */
  task(name: string): TaskDefinition | undefined {
    return this.definitions.get(name);
  }

  /**
   * The typed client of a registered task class or service:
   * `app.client(Add).delay(4, 5)`, `app.client(EmailService).sendWelcome.delay('u1', opts)`.
   */
  client<C extends ClassType>(cls: C): ClientOf<C> {
    const definitions = this.tasks.filter((d) => d.target === cls);
    if (definitions.length === 0) {
      throw new ConfigError(`${cls.name} is not among this app's tasks; add it to \`tasks\``);
    }
    if (definitions[0]!.kind === 'class') return this.proxy(definitions[0]!) as ClientOf<C>;
    const proxies = new Map(definitions.map((d) => [d.method, this.proxy(d)]));
    return new Proxy(Object.freeze(Object.fromEntries(proxies)), {
      get(target, key) {
        // A helper method of the service is not a task; what every object has (toString,
        // constructor, valueOf...) is left to behave as usual.
        if (
          typeof key === 'string' &&
          !proxies.has(key) &&
          !(key in Object.prototype) &&
          typeof cls.prototype[key] === 'function'
        ) {
          throw new ConfigError(`${cls.name}.${key} is not a @Task method`);
        }
        return Reflect.get(target, key);
      },
    }) as ClientOf<C>;
  }

  /**
   * Sends a task by name, registered here or not (a task implemented by a Python worker, say).
   * Resolves once the broker has confirmed the message.
   */
  async send<R = unknown>(
    name: string,
    args: unknown[] = [],
    options: SendOptions = {},
  ): Promise<AsyncResult<R>> {
    const definition = this.definitions.get(name);
    if (definition) this.validateArguments?.(definition, args, options.kwargs ?? {});
    return this.sendWire<R>(
      name,
      argsToWire(args, definition),
      options.kwargs ? kwargsToWire(options.kwargs, definition) : {},
      options,
      definition,
    );
  }

  /**
   * Revokes tasks: they are stored REVOKED at once, so a worker that starts later skips them
   * too, and every running worker is told (a broadcast on `celery.pidbox`, as Celery's
   * `app.control.revoke` does). A task already running finishes, but its result is dropped;
   * with `terminate: true` it is aborted (its AbortSignal fires; a thread is terminated).
   */
  async revoke(taskIds: string | string[], options: RevokeOptions = {}): Promise<void> {
    const ids = Array.isArray(taskIds) ? taskIds : [taskIds];
    if (this.backend) {
      await Promise.all(
        ids.map((id) =>
          this.backend!.store({
            status: 'REVOKED',
            result: {
              exc_type: 'TaskRevokedError',
              exc_message: ['revoked'],
              exc_module: 'celery.exceptions',
            },
            traceback: null,
            children: [],
            date_done: celeryDateDone(),
            task_id: id,
          }),
        ),
      );
    }
    await this.transport.broadcast(
      CONTROL_EXCHANGE,
      encodeRevoke({ taskIds: ids, terminate: options.terminate ?? false, signal: 'SIGTERM' }),
    );
  }

  /** A handle on the result of a task sent earlier, by id. */
  result<R = unknown>(taskId: string): AsyncResult<R> {
    return this.asyncResult<R>(taskId, undefined);
  }

  /** A worker for this app's tasks. Call `start()` on it; {@link close} stops it if you did not. */
  worker(options: WorkerOptions = {}): Worker {
    const worker = new Worker(this, options);
    this.workers.add(worker);
    worker.once('worker-stopped', () => this.workers.delete(worker));
    return worker;
  }

  /**
   * Stops the app's workers that still run (gracefully, as `worker.stop()` does, each within its
   * `shutdownTimeoutMs`; a worker still starting first ends the broker step under way, which the
   * transport bounds), then closes the broker and backend connections, side by side. Bounded
   * (each connection gets {@link DEFAULT_CLOSE_TIMEOUT_MS}) and never rejects, even with a server
   * down: it resolves with the parts it could not close cleanly, and why (`report.unclosed`,
   * empty when all went well).
   */
  close(): Promise<CloseReport> {
    // A second call while the first still stops workers waits for it, rather than closing the
    // connections under their running tasks.
    this.closing ??= this.closeNow().finally(() => {
      this.closing = undefined;
    });
    return this.closing;
  }

  private async closeNow(): Promise<CloseReport> {
    // A running worker's heartbeats and consumers would open the connections again.
    const workers = [...this.workers];
    this.workers.clear();
    const stopped = await Promise.all(
      workers.map((worker) =>
        worker.stop().then(
          () => undefined,
          (error: unknown) => ({
            part: `worker ${worker.hostname}`,
            error: error instanceof Error ? error : new Error(String(error)),
          }),
        ),
      ),
    );
    // The control client's reply queue first: it lives on the broker connection.
    // A closed client waits for no reply; an app used again gets a new one.
    const control = this.remoteControl;
    this.remoteControl = undefined;
    await control?.close().catch(() => undefined);
    const parts: Array<readonly [string, () => Promise<void>]> = [
      ['broker', () => this.transport.close()],
    ];
    const backend = this.backend;
    if (backend) parts.push(['result backend', () => backend.close()]);
    const report = await closeParts(parts, DEFAULT_CLOSE_TIMEOUT_MS);
    const unstopped = stopped.filter((part) => part !== undefined);
    return { unclosed: [...unstopped, ...report.unclosed] };
  }

  /**
   * @internal Used by the worker to send a task a message's canvas links ask for (a chain's next
   * step, callbacks, errbacks), with the task's own options when it is registered here.
   */
  sendCall(call: Omit<TaskCall, 'queue' | 'taskOptions'>): Promise<string> {
    return this.publish(call, this.task(call.name));
  }

  /** Publishes a call with the options and queue of its task, when registered here. */
  private publish(
    call: Omit<TaskCall, 'queue' | 'taskOptions'>,
    definition: TaskDefinition | undefined,
  ): Promise<string> {
    return this.producer.send({
      ...call,
      taskOptions: definition?.options,
      queue: definition?.queue ?? this.defaultQueue,
    });
  }

  /** @internal Used by the worker to declare queues once, the same way producers do. */
  ensureQueue(name: string): Promise<void> {
    return this.producer.ensureQueue(name);
  }

  private proxy(definition: TaskDefinition): TaskProxy<unknown[], unknown> {
    // async, so a SerializationError rejects the returned promise instead of throwing.
    const sendWith = async (
      args: unknown[],
      options: SendOptions = {},
    ): Promise<AsyncResult<unknown>> => {
      this.validateArguments?.(definition, args, options.kwargs ?? {});
      return this.sendWire(
        definition.name,
        argsToWire(args, definition),
        options.kwargs ? kwargsToWire(options.kwargs, definition) : {},
        options,
        definition,
      );
    };
    return Object.freeze({
      taskName: definition.name,
      delay: (...args: unknown[]) => sendWith(args),
      applyAsync: (args: unknown[], options?: SendOptions) => sendWith(args, options),
      s: (...args: unknown[]) => {
        this.validateArguments?.(definition, args, {});
        return new Signature<unknown>(
          definition.name,
          argsToWire(args, definition),
          {},
          {},
          (sig) =>
            this.sendWire(sig.task, [...sig.args], { ...sig.kwargs }, sig.options, definition),
        );
      },
    });
  }

  private async sendWire<R>(
    name: string,
    args: unknown[],
    kwargs: Record<string, unknown>,
    options: SendOptions,
    definition: TaskDefinition | undefined,
  ): Promise<AsyncResult<R>> {
    const id = await this.publish({ name, args, kwargs, options }, definition);
    return this.asyncResult<R>(id, definition);
  }

  private asyncResult<R>(id: string, definition: TaskDefinition | undefined): AsyncResult<R> {
    const returns = definition?.options.returns?.();
    return new AsyncResult<R>(id, {
      backend: this.backend,
      defaultTimeoutMs: this.getTimeoutMs,
      decode: (value) => (returns ? resultFromWire(value, returns) : value) as R,
      revoke: (taskId, options) => this.revoke(taskId, options),
    });
  }
}
