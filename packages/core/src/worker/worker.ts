import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import type { Conveyor } from '../app/conveyor';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_PREFETCH_MULTIPLIER,
  DEFAULT_RESULT_STORE_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  EXIT_FORCED,
  EXIT_GRACEFUL,
  EXIT_SHUTDOWN_TIMEOUT,
  REQUEUE_PAUSE_MS,
} from '../defaults';
import { ConfigError, MessageDecodeError, NotRegisteredError } from '../errors';
import { parseCeleryTimestamp } from '../protocol/celery-time';
import { decodeTaskMessage } from '../protocol/message-codec';
import type { ResultMeta } from '../protocol/result-meta';
import type { TaskMessage } from '../protocol/task-message';
import { argumentsFromWire, resultToWire } from '../serialization/argument-codec';
import { runInTaskContext, type TaskContext } from '../task/task-context';
import type { TaskDefinition } from '../task/task-definition';
import type { ClassType } from '../task/task-options';
import type { Consumer, Delivery } from '../transport/transport';
import { ResultWriter } from './result-writer';
import type { TaskEvent, WorkerEvents } from './worker-events';
import type { WorkerOptions } from './worker-options';

/** A task message accepted by the worker, from receipt until its message is settled. */
interface Job {
  readonly delivery: Delivery;
  readonly message: TaskMessage;
  readonly definition: TaskDefinition;
  readonly abort: AbortController;
  /** Set when shutdown gave the message back: the run's outcome must then be dropped. */
  abandoned: boolean;
  /** Set once the message was acked (early acks) or otherwise settled. */
  settled: boolean;
}

/**
 * Consumes task messages and runs them. At-least-once by default: a message is acked only after
 * its task finished and the result was stored. Malformed messages and unknown tasks are
 * dead-lettered with a reason and never stop the worker.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  /** The worker's name (`conveyor-<pid>@<host>`). */
  readonly hostname: string;
  readonly concurrency: number;
  readonly queues: readonly string[];
  private readonly prefetch: number;
  private readonly shutdownTimeoutMs: number;
  private readonly instances = new Map<ClassType, object>();
  private readonly writer: ResultWriter | undefined;
  private readonly consumers: Consumer[] = [];
  private readonly waiting: Job[] = [];
  private readonly running = new Set<Job>();
  private readonly settling = new Set<Promise<unknown>>();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping?: Promise<number>;
  private removeSignalHandlers?: () => void;

  constructor(
    private readonly app: Conveyor,
    private readonly options: WorkerOptions = {},
  ) {
    super();
    this.hostname = options.hostname ?? `conveyor-${process.pid}@${osHostname()}`;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new ConfigError(`worker concurrency must be a positive integer, got ${options.concurrency}`);
    }
    const multiplier = options.prefetchMultiplier ?? DEFAULT_PREFETCH_MULTIPLIER;
    if (!Number.isInteger(multiplier) || multiplier < 1) {
      throw new ConfigError(`prefetchMultiplier must be a positive integer, got ${options.prefetchMultiplier}`);
    }
    this.prefetch = this.concurrency * multiplier;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    this.queues = options.queues ?? [...new Set(app.tasks.map((t) => t.queue))];
    if (this.queues.length === 0) {
      throw new ConfigError('the worker has no queues: register tasks or pass `queues`');
    }
    this.writer = app.backend
      ? new ResultWriter(
          app.backend,
          this.hostname,
          app.resultExtended,
          options.resultStoreTimeoutMs ?? DEFAULT_RESULT_STORE_TIMEOUT_MS,
        )
      : undefined;
    for (const instance of options.instances ?? []) {
      this.instances.set(instance.constructor as ClassType, instance);
    }
    for (const definition of app.tasks) this.instanceFor(definition);
  }

  /** Tasks running now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Declares the queues and starts consuming them. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`worker ${this.hostname} was already started`);
    this.state = 'running';
    for (const queue of this.queues) {
      await this.app.ensureQueue(queue);
      this.consumers.push(
        await this.app.transport.consume(queue, (delivery) => this.receive(delivery), {
          prefetch: this.prefetch,
        }),
      );
    }
    if (this.options.handleSignals ?? true) this.installSignalHandlers();
  }

  /**
   * Stops gracefully: no new messages; messages not started go back to the queue; running tasks
   * get up to `shutdownTimeoutMs` to finish, then are aborted and their messages requeued.
   * Resolves with the exit code that says which happened.
   */
  stop(): Promise<number> {
    this.stopping ??= this.shutdown(false);
    return this.stopping;
  }

  private receive(delivery: Delivery): void {
    if (this.state !== 'running') {
      this.settle(delivery.requeue());
      return;
    }
    let message: TaskMessage;
    try {
      message = decodeTaskMessage(delivery.message, { maxBodyBytes: this.options.maxBodyBytes });
    } catch (error) {
      const reason = error instanceof MessageDecodeError ? error.reason : String(error);
      this.reject(delivery, reason, error instanceof MessageDecodeError ? error.taskId : undefined);
      return;
    }
    const definition = this.app.task(message.headers.task);
    if (!definition) {
      this.settle(this.refuseUnknown(delivery, message));
      return;
    }
    const eta = message.headers.eta ? parseCeleryTimestamp(message.headers.eta)!.getTime() : undefined;
    if (eta !== undefined && eta > Date.now()) {
      // A future eta (a Python producer, or a broker without delays) waits in the broker, not here.
      this.settle(this.redelay(delivery, eta));
      return;
    }
    const job: Job = { delivery, message, definition, abort: new AbortController(), abandoned: false, settled: false };
    this.emit('task-received', this.event(job));
    const expires = message.headers.expires ? parseCeleryTimestamp(message.headers.expires)!.getTime() : undefined;
    if (expires !== undefined && expires <= Date.now()) {
      this.settle(this.revoke(job, 'expired'));
      return;
    }
    this.waiting.push(job);
    this.pump();
  }

  private pump(): void {
    while (this.state === 'running' && this.running.size < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running.add(job);
      void this.process(job).finally(() => {
        this.running.delete(job);
        this.pump();
      });
    }
  }

  private async process(job: Job): Promise<void> {
    const { message, definition, delivery } = job;
    const early = definition.options.acks === 'early';
    if (early) {
      job.settled = true;
      await this.safely(delivery.ack());
    }
    if (this.writer && definition.options.trackStarted && !message.headers.ignore_result) {
      await this.writer.store(this.writer.started(message, delivery.queue), () => job.abandoned, this.warn);
    }
    this.emit('task-started', this.event(job));
    const startedAt = performance.now();
    let meta: ResultMeta | undefined;
    try {
      const value = resultToWire(await this.run(job));
      const runtimeMs = performance.now() - startedAt;
      meta = this.writer?.success(message, delivery.queue, value);
      if (!job.abandoned) this.emit('task-succeeded', { ...this.event(job), runtimeMs });
    } catch (error) {
      const runtimeMs = performance.now() - startedAt;
      meta = this.writer?.failure(message, delivery.queue, error);
      if (!job.abandoned) this.emit('task-failed', { ...this.event(job), runtimeMs, error });
    }
    if (job.abandoned) return;
    if (meta && this.writer && !message.headers.ignore_result) {
      const stored = await this.writer.store(meta, () => job.abandoned, this.warn);
      if (!stored) {
        if (!job.settled && !job.abandoned) {
          job.settled = true;
          this.warn(new Error(`result of task ${message.headers.id} could not be stored; message requeued`));
          await this.safely(delivery.requeue());
        }
        return;
      }
    }
    if (!job.settled && !job.abandoned) {
      job.settled = true;
      await this.safely(delivery.ack());
    }
  }

  private async run(job: Job): Promise<unknown> {
    const { message, definition, delivery } = job;
    const h = message.headers;
    const context: TaskContext = {
      id: h.id,
      name: h.task,
      retries: h.retries,
      attempt: h.retries + 1,
      headers: h,
      signal: job.abort.signal,
      rootId: h.root_id,
      parentId: h.parent_id,
      queue: delivery.queue,
      redelivered: delivery.redelivered,
      hostname: this.hostname,
    };
    const instance = this.instanceFor(definition) as Record<string, (...args: unknown[]) => unknown>;
    return runInTaskContext(context, async () => {
      const args = argumentsFromWire(definition, message.args, message.kwargs);
      return instance[definition.method]!(...args);
    });
  }

  /** Unknown task: stored as FAILURE (NotRegistered, as Celery does) and dead-lettered. */
  private async refuseUnknown(delivery: Delivery, message: TaskMessage): Promise<void> {
    const h = message.headers;
    const error = new NotRegisteredError(h.id, h.task);
    if (this.writer && !h.ignore_result) {
      await this.writer.store(this.writer.failure(message, delivery.queue, error), () => false, this.warn);
    }
    this.emit('message-rejected', { id: h.id, reason: `task '${h.task}' is not registered`, queue: delivery.queue });
    await delivery.deadLetter(`task '${h.task}' is not registered on ${this.hostname}`);
  }

  private reject(delivery: Delivery, reason: string, id?: string): void {
    this.emit('message-rejected', { id, reason, queue: delivery.queue });
    this.settle(delivery.deadLetter(reason));
  }

  private async redelay(delivery: Delivery, eta: number): Promise<void> {
    try {
      await this.app.transport.publish(delivery.message, { queue: delivery.queue, deliverAt: eta });
    } catch (error) {
      this.warn(error as Error);
      // Hand it back after a pause rather than at once, so a broker refusing it cannot spin us.
      await new Promise((resolve) => setTimeout(resolve, REQUEUE_PAUSE_MS));
      await delivery.requeue();
      return;
    }
    await delivery.ack();
  }

  private async revoke(job: Job, reason: string): Promise<void> {
    job.settled = true;
    const { message, delivery } = job;
    if (this.writer && !message.headers.ignore_result) {
      await this.writer.store(this.writer.revoked(message, delivery.queue, reason), () => false, this.warn);
    }
    this.emit('task-revoked', { ...this.event(job), reason });
    await delivery.ack();
  }

  private async shutdown(forced: boolean): Promise<number> {
    if (this.state === 'new' || this.state === 'stopped') {
      this.state = 'stopped';
      return EXIT_GRACEFUL;
    }
    this.state = 'stopping';
    await Promise.all(this.consumers.splice(0).map((c) => this.safely(c.cancel())));
    for (const job of this.waiting.splice(0)) this.giveBack(job);
    let code = EXIT_GRACEFUL;
    if (this.running.size > 0) {
      const finished = await this.waitForRunning(forced ? 0 : this.shutdownTimeoutMs);
      if (!finished) {
        code = forced ? EXIT_FORCED : EXIT_SHUTDOWN_TIMEOUT;
        for (const job of this.running) {
          job.abort.abort(new Error('worker shutdown'));
          this.giveBack(job);
        }
      }
    }
    await Promise.all([...this.settling]);
    this.removeSignalHandlers?.();
    this.state = 'stopped';
    return code;
  }

  /** Requeues a job's message unless it was settled already; the run's outcome is then dropped. */
  private giveBack(job: Job): void {
    job.abandoned = true;
    if (job.settled) return;
    job.settled = true;
    this.settle(job.delivery.requeue());
  }

  private waitForRunning(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const check = (): void => {
        if (this.running.size === 0) resolve(true);
        else if (Date.now() >= deadline) resolve(false);
        else setTimeout(check, Math.min(20, Math.max(1, deadline - Date.now())));
      };
      check();
    });
  }

  private installSignalHandlers(): void {
    let signals = 0;
    const onSignal = (): void => {
      signals += 1;
      const stopped = signals === 1 ? this.stop() : this.shutdown(true);
      void stopped.then(async (code) => {
        await this.app.close().catch(() => undefined);
        process.exit(code);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    this.removeSignalHandlers = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
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

  private event(job: Job): TaskEvent {
    return { id: job.message.headers.id, name: job.message.headers.task };
  }

  /** Tracks a settlement so shutdown waits for it; failures are reported, never thrown. */
  private settle(settlement: Promise<unknown>): void {
    const tracked = this.safely(settlement);
    this.settling.add(tracked);
    void tracked.finally(() => this.settling.delete(tracked));
  }

  private async safely(operation: Promise<unknown>): Promise<void> {
    try {
      await operation;
    } catch (error) {
      this.warn(error as Error);
    }
  }

  private readonly warn = (error: Error): void => {
    this.emit('worker-error', error);
  };
}
