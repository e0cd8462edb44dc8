import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import type { Conveyor } from '../app/conveyor';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_EXPIRY_SWEEP_INTERVAL_MS,
  DEFAULT_PREFETCH_MULTIPLIER,
  DEFAULT_RESULT_STORE_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  EXIT_FORCED,
  EXIT_GRACEFUL,
  EXIT_SHUTDOWN_TIMEOUT,
  RATE_LIMIT_LOCAL_WAIT_MS,
  REQUEUE_PAUSE_MS,
} from '../defaults';
import {
  ConfigError,
  ConnectionError,
  ConveyorError,
  MessageDecodeError,
  NotRegisteredError,
} from '../errors';
import { celeryTimestamp, parseCeleryTimestamp } from '../protocol/celery-time';
import type { ControlledWorker } from '../control/control-commands';
import { WorkerPresence } from '../events/worker-presence';
import type { RevokeCommand } from '../protocol/control-message';
import { decodeTaskMessage } from '../protocol/message-codec';
import type { ResultMeta } from '../protocol/result-meta';
import type { TaskMessage } from '../protocol/task-message';
import { argumentsFromWire, resultToWire } from '../serialization/argument-codec';
import { runInTaskContext, type TaskContext } from '../task/task-context';
import type { TaskDefinition } from '../task/task-definition';
import type { ClassType } from '../task/task-options';
import type { Consumer, Delivery, TransportMessage } from '../transport/transport';
import { requestInfo } from './request-info';
import { workerStats } from './worker-stats';
import { failureLinks, successLinks, unsupportedCanvas, type LinkCall } from './canvas-links';
import { stopOnSignals } from './process-signals';
import { parseRateLimit, RateLimiter } from './rate-limiter';
import { ResultWriter } from './result-writer';
import { RetryPolicy, RetryRequest, type RetryDecision } from './retry-policy';
import { RevocationCheck } from './revocation-check';
import { Revocations } from './revocations';
import {
  fromThreadOutcome,
  terminatedReason,
  timeLimitsOf,
  withTimeLimits,
  type RunControl,
  type RunOutcome,
} from './task-execution';
import { ThreadPool } from './thread-pool';
import type { TaskEvent, WorkerEvents } from './worker-events';
import type { WorkerOptions } from './worker-options';
import { LazyAbort } from './lazy-abort';

/** Header of a message re-delayed by the rate limiter: the slot (epoch ms) it reserved. */
export const RATE_SLOT_HEADER = 'x-conveyor-rate-slot';

/** A task message accepted by the worker, from receipt until its message is settled. */
interface Job {
  readonly delivery: Delivery;
  readonly message: TaskMessage;
  readonly definition: TaskDefinition;
  readonly abort: LazyAbort;
  /** Stops the running task for good (terminates its thread); set while it runs. */
  control?: RunControl;
  /** Set when shutdown gave the message back: the run's outcome must then be dropped. */
  abandoned: boolean;
  /** Set once the message was acked (early acks) or otherwise settled. */
  settled: boolean;
  /** Epoch ms the task started (for `inspect active`). */
  startedAt?: number;
}

/**
 * Consumes task messages and runs them. At-least-once by default: a message is acked only after
 * its task finished and the result was stored. Malformed messages and unknown tasks are
 * dead-lettered with a reason and never stop the worker.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  /** The worker's name (`conveyor-<pid>@<host>`). */
  readonly hostname: string;
  private maxConcurrency: number;
  private readonly prefetchMultiplier: number;
  private readonly shutdownTimeoutMs: number;
  private readonly revocationCheck: RevocationCheck | undefined;
  private readonly instances = new Map<ClassType, object>();
  private readonly policies = new Map<string, RetryPolicy>();
  private readonly rateIntervals = new Map<string, number>();
  /** The rate limits in force, as written (`'10/s'`), for `inspect registered`. */
  private readonly rateLimits = new Map<string, string>();
  private readonly rateLimiter = new RateLimiter();
  private readonly revocations = new Revocations();
  private readonly writer: ResultWriter | undefined;
  private readonly threads: ThreadPool | undefined;
  /** The task queue consumers, by queue; `add_consumer`/`cancel_consumer` change them. */
  private readonly consumers = new Map<string, Consumer | undefined>();
  private readonly presence: WorkerPresence;
  /** Time limits set by the `time_limit` command, by task name. */
  private readonly timeLimitOverrides = new Map<string, { softMs?: number; hardMs?: number }>();
  /** Tasks started, by name, and in all (`inspect stats`, heartbeats). */
  private readonly totals = new Map<string, number>();
  private processed = 0;
  private readonly startedAtMs = Date.now();
  private readonly waiting: Job[] = [];
  private readonly running = new Set<Job>();
  /** Rate-limited jobs waiting locally for their slot, by their timer. */
  private readonly settling = new Set<Promise<unknown>>();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping?: Promise<number>;
  private removeSignalHandlers?: () => void;
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly app: Conveyor,
    private readonly options: WorkerOptions = {},
  ) {
    super();
    this.hostname = options.hostname ?? `conveyor-${process.pid}@${osHostname()}`;
    this.maxConcurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(this.maxConcurrency) || this.maxConcurrency < 1) {
      throw new ConfigError(
        `worker concurrency must be a positive integer, got ${options.concurrency}`,
      );
    }
    const multiplier = options.prefetchMultiplier ?? DEFAULT_PREFETCH_MULTIPLIER;
    if (!Number.isInteger(multiplier) || multiplier < 1) {
      throw new ConfigError(
        `prefetchMultiplier must be a positive integer, got ${options.prefetchMultiplier}`,
      );
    }
    this.prefetchMultiplier = multiplier;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    for (const queue of options.queues ?? new Set(app.tasks.map((t) => t.queue))) {
      this.consumers.set(queue, undefined);
    }
    if (this.consumers.size === 0) {
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
    this.revocationCheck =
      (options.checkRevokedInBackend ?? true) && app.backend
        ? new RevocationCheck(app.backend, this.warn)
        : undefined;
    for (const instance of options.instances ?? []) {
      this.instances.set(instance.constructor as ClassType, instance);
    }
    for (const definition of app.tasks) {
      this.policies.set(definition.name, new RetryPolicy(definition.options.retry));
      if (definition.options.rateLimit !== undefined) {
        this.rateIntervals.set(
          definition.name,
          parseRateLimit(definition.options.rateLimit, definition.label),
        );
        this.rateLimits.set(definition.name, definition.options.rateLimit);
      }
      // Checked now for the tasks of this worker's queues only: a worker for 'emails' must not
      // need the constructor arguments of a service it never runs. Any other task that arrives
      // anyway (sent to one of these queues by name) is checked when it runs, and fails then.
      if (!this.consumers.has(definition.queue)) continue;
      if (definition.options.isolation === 'thread') {
        if (!options.appModule) throw new ConfigError(needsAppModule(definition));
      } else {
        this.instanceFor(definition);
      }
    }
    this.threads = options.appModule ? new ThreadPool(options.appModule) : undefined;
    this.presence = new WorkerPresence(
      app.transport,
      this.controlled(),
      () => ({ active: this.running.size, processed: this.processed }),
      {
        hostname: this.hostname,
        taskEvents: options.taskEvents ?? false,
        heartbeat: options.heartbeat ?? true,
        heartbeatIntervalMs: options.heartbeatIntervalMs,
      },
      this.warn,
    );
  }

  /** Tasks run at once; the `pool_grow`/`pool_shrink`/`autoscale` commands change it. */
  get concurrency(): number {
    return this.maxConcurrency;
  }

  /** Celery events this worker sent, and dropped (no connection, the broker pushing back). */
  get eventCounts(): { sent: number; dropped: number } {
    return this.presence.eventCounts;
  }

  /** The queues consumed; the `add_consumer`/`cancel_consumer` commands change them. */
  get queues(): readonly string[] {
    return [...this.consumers.keys()];
  }

  /** Each consumer's prefetch: concurrency × prefetchMultiplier. */
  private get prefetch(): number {
    return this.maxConcurrency * this.prefetchMultiplier;
  }

  /** Tasks running now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Declares the queues, subscribes to revokes, and starts consuming. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`worker ${this.hostname} was already started`);
    this.state = 'running';
    // Remote control first (revokes must not be missed), then the task queues.
    await this.presence.start();
    for (const queue of this.queues) await this.consumeQueue(queue);
    if (this.options.handleSignals ?? true) this.installSignalHandlers();
    this.scheduleExpirySweeps();
  }

  /** Periodic result expiry for backends that need it; one sweep at a time across workers is the backend's job. */
  private scheduleExpirySweeps(): void {
    const backend = this.app.backend;
    const interval = this.options.expirySweepIntervalMs ?? DEFAULT_EXPIRY_SWEEP_INTERVAL_MS;
    if (!backend?.sweepExpired || interval <= 0) return;
    const sweep = (): void => {
      void backend.sweepExpired!().catch(this.warn);
      // Jitter keeps workers started together from sweeping in step.
      this.sweepTimer = setTimeout(sweep, interval * (0.75 + Math.random() / 2));
      this.sweepTimer.unref();
    };
    this.sweepTimer = setTimeout(sweep, Math.random() * Math.min(interval, 10_000));
    this.sweepTimer.unref();
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

  private async consumeQueue(queue: string): Promise<void> {
    await this.app.ensureQueue(queue);
    this.consumers.set(
      queue,
      await this.app.transport.consume(queue, (delivery) => this.receive(delivery), {
        prefetch: this.prefetch,
      }),
    );
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
      this.emit('message-rejected', {
        id: (error as MessageDecodeError).taskId,
        reason,
        queue: delivery.queue,
      });
      const id = (error as MessageDecodeError).taskId;
      if (id) this.presence.taskEvents.rejected(id, false);
      this.settle(this.deadLetterOrRequeue(delivery, reason));
      return;
    }
    const definition = this.app.task(message.headers.task);
    if (!definition) {
      this.settle(this.refuseUnknown(delivery, message));
      return;
    }
    const unsupported = unsupportedCanvas(message.embed);
    if (unsupported) {
      this.emit('message-rejected', {
        id: message.headers.id,
        reason: unsupported,
        queue: delivery.queue,
      });
      this.presence.taskEvents.rejected(message.headers.id, false);
      this.settle(this.deadLetterOrRequeue(delivery, unsupported));
      return;
    }
    const eta = message.headers.eta
      ? parseCeleryTimestamp(message.headers.eta)!.getTime()
      : undefined;
    if (eta !== undefined && eta > Date.now()) {
      // A future eta (a Python producer, or a retry) waits in the broker, not in this worker.
      this.settle(this.redelay(delivery, delivery.message, eta));
      return;
    }
    const job: Job = {
      delivery,
      message,
      definition,
      abort: new LazyAbort(),
      abandoned: false,
      settled: false,
    };
    this.emit('task-received', this.event(job));
    this.presence.taskEvents.received(message);
    const expires = message.headers.expires
      ? parseCeleryTimestamp(message.headers.expires)!.getTime()
      : undefined;
    if (expires !== undefined && expires <= Date.now()) {
      this.settle(this.finishRevoked(job, 'expired'));
      return;
    }
    if (this.revocations.has(message.headers.id)) {
      this.settle(this.finishRevoked(job, 'revoked'));
      return;
    }
    this.admit(job);
  }

  /** Queues a job to run, after its rate limit allows it. */
  private admit(job: Job): void {
    const interval = this.rateIntervals.get(job.definition.name);
    const reserved = job.delivery.message.headers[RATE_SLOT_HEADER];
    if (interval !== undefined && typeof reserved !== 'number') {
      const wait = this.rateLimiter.reserve(job.definition.name, interval);
      if (wait > RATE_LIMIT_LOCAL_WAIT_MS) {
        // A long wait is spent in the broker, so it holds no prefetch slot and blocks no other task.
        const slot = Date.now() + wait;
        const message = {
          ...job.delivery.message,
          headers: { ...job.delivery.message.headers, [RATE_SLOT_HEADER]: slot },
        };
        job.settled = true;
        this.settle(this.redelay(job.delivery, message, slot));
        return;
      }
      if (wait > 0) {
        this.hold(job, wait);
        return;
      }
    } else if (typeof reserved === 'number' && reserved > Date.now()) {
      this.hold(job, reserved - Date.now());
      return;
    }
    this.waiting.push(job);
    this.pump();
  }

  private hold(job: Job, ms: number): void {
    const timer = setTimeout(() => {
      this.heldJobs.delete(timer);
      if (this.state !== 'running') {
        this.giveBack(job);
        return;
      }
      this.waiting.push(job);
      this.pump();
    }, ms);
    this.heldJobs.set(timer, job);
  }

  private readonly heldJobs = new Map<NodeJS.Timeout, Job>();

  private pump(): void {
    while (
      this.state === 'running' &&
      this.running.size < this.concurrency &&
      this.waiting.length > 0
    ) {
      const job = this.waiting.shift()!;
      this.running.add(job);
      void this.process(job)
        .catch((error: unknown) => {
          // A bug must not take the process down with every task it holds: report it and give
          // the message back, unless it was settled already.
          this.warn(error instanceof Error ? error : new Error(String(error)));
          if (!job.settled) {
            job.settled = true;
            this.settle(this.requeueLater(job.delivery));
          }
        })
        .finally(() => {
          this.running.delete(job);
          this.pump();
        });
    }
  }

  private async process(job: Job): Promise<void> {
    const { message, definition, delivery } = job;
    if (await this.revokedInBackend(job)) {
      await this.finishRevoked(job, 'revoked');
      return;
    }
    if (definition.options.acks === 'early') {
      job.settled = true;
      await this.safely(delivery.ack());
    }
    if (this.writer && definition.options.trackStarted && !message.headers.ignore_result) {
      await this.writer.store(
        this.writer.started(message, delivery.queue),
        () => job.abandoned,
        this.warn,
      );
    }
    // A revoke (with or without terminate) that came while the task was being set up: the task
    // has no abort lever before execute(), so it must be caught here, with no await in between.
    if (this.revocations.has(message.headers.id)) {
      await this.finishRevoked(job, 'revoked');
      return;
    }
    this.emit('task-started', this.event(job));
    this.presence.taskEvents.started(message.headers.id);
    job.startedAt = Date.now();
    this.totals.set(definition.name, (this.totals.get(definition.name) ?? 0) + 1);
    const startedAt = performance.now();
    const outcome = await this.execute(job);
    // The run is over: a late revoke must not reach a thread that now runs another task.
    job.control = undefined;
    const runtimeMs = performance.now() - startedAt;
    this.processed += 1;
    if (job.abandoned) return;
    if (outcome.kind === 'terminated' || this.revocations.has(message.headers.id)) {
      await this.finishRevoked(job, outcome.kind === 'terminated' ? 'terminated' : 'revoked');
      return;
    }
    if (outcome.kind === 'success') {
      let value: unknown;
      try {
        value = resultToWire(outcome.value);
      } catch (error) {
        await this.finishFailed(job, { retry: false, exhausted: false, error }, runtimeMs);
        return;
      }
      // Sent before the result is stored, as Celery does: once a chain step's result is ready,
      // the next step is already on the broker.
      if (!(await this.sendLinks(job, successLinks(message, value), runtimeMs))) return;
      this.emit('task-succeeded', { ...this.event(job), runtimeMs });
      this.presence.taskEvents.succeeded(message.headers.id, value, runtimeMs);
      await this.finish(job, this.writer?.success(message, delivery.queue, value), 'ack');
      return;
    }
    const decision = this.policies
      .get(definition.name)!
      .decide(outcome.error, message.headers.retries);
    if (decision.retry) {
      await this.retry(job, decision.delayMs, decision.error);
      return;
    }
    await this.finishFailed(job, decision, runtimeMs);
  }

  /** Runs the task, on this event loop or in a thread, under its time limits. */
  private execute(job: Job): Promise<RunOutcome> {
    const { message, definition, delivery } = job;
    const h = message.headers;
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
          context: {
            id: h.id,
            name: h.task,
            retries: h.retries,
            headers: h,
            rootId: h.root_id,
            parentId: h.parent_id,
            queue: delivery.queue,
            redelivered: delivery.redelivered,
            hostname: this.hostname,
          },
        },
        (meta) => void this.storeProgress(job, meta).catch(this.warn),
      );
      job.abort.signal.addEventListener('abort', () =>
        threadRun.abort(job.abort.signal.reason as Error),
      );
      run = threadRun.outcome.then(fromThreadOutcome);
      terminate = () => threadRun.terminate();
    } else {
      run = this.runHere(job).then(
        (value): RunOutcome => ({ kind: 'success', value }),
        (error: unknown): RunOutcome => ({ kind: 'error', error }),
      );
    }
    job.control = {
      abort: (reason) => job.abort.abort(reason),
      terminate,
    };
    const overrides = this.timeLimitOverrides.get(definition.name);
    return withTimeLimits(h.id, run, job.control, {
      ...timeLimitsOf(message, definition),
      ...overrides,
    });
  }

  private async runHere(job: Job): Promise<unknown> {
    const { message, definition, delivery } = job;
    const h = message.headers;
    const context: TaskContext = {
      id: h.id,
      name: h.task,
      retries: h.retries,
      attempt: h.retries + 1,
      headers: h,
      get signal() {
        return job.abort.signal;
      },
      rootId: h.root_id,
      parentId: h.parent_id,
      queue: delivery.queue,
      redelivered: delivery.redelivered,
      hostname: this.hostname,
      retry: (options) => {
        throw new RetryRequest(options?.countdownMs, options?.error);
      },
      progress: (meta) => this.storeProgress(job, meta),
    };
    const instance = this.instanceFor(definition) as Record<
      string,
      (...args: unknown[]) => unknown
    >;
    return runInTaskContext(context, async () => {
      const args = argumentsFromWire(definition, message.args, message.kwargs);
      return instance[definition.method]!(...args);
    });
  }

  /**
   * Stores a running task's PROGRESS meta. Checked like a result (a SerializationError reaches
   * the task); a store that keeps failing is reported, and does not fail the task.
   */
  private async storeProgress(job: Job, meta: unknown): Promise<void> {
    const { message, delivery } = job;
    const value = resultToWire(meta, 'progress');
    if (!this.writer || message.headers.ignore_result || job.abandoned) return;
    await this.writer.store(
      this.writer.progress(message, delivery.queue, value),
      () => job.abandoned || job.settled || this.state !== 'running',
      this.warn,
    );
  }

  /**
   * Retries through the broker: the same message with `retries + 1` and an eta, delayed by the
   * transport; RETRY is stored; then the original is acked. Root and parent ids stay as they were.
   */
  private async retry(job: Job, delayMs: number, error: unknown): Promise<void> {
    const { message, delivery } = job;
    const due = Date.now() + delayMs;
    const headers: Record<string, unknown> = {
      ...delivery.message.headers,
      retries: message.headers.retries + 1,
      eta: celeryTimestamp(new Date(due)),
    };
    delete headers[RATE_SLOT_HEADER];
    try {
      await this.app.transport.publish(
        { ...delivery.message, headers },
        { queue: delivery.queue, deliverAt: due },
      );
    } catch (publishError) {
      if (!job.settled && !job.abandoned) {
        job.settled = true;
        await this.publishFailed(delivery, publishError, 'could not publish the retry');
      } else {
        this.warn(publishError as Error);
      }
      return;
    }
    const meta = this.writer?.failure(message, delivery.queue, error);
    if (meta) meta.status = 'RETRY';
    await this.finish(job, meta, 'ack');
    this.emit('task-retried', {
      ...this.event(job),
      error,
      retryInMs: delayMs,
      retries: message.headers.retries + 1,
    });
    this.presence.taskEvents.retried(message.headers.id, error);
  }

  /**
   * Sends what a successful task's links ask for. False when one could not be sent: a call the
   * broker or the app refuses (a bad option, an unroutable queue) fails the task; a lost
   * connection gives the message back, so the task runs again and its links are sent then.
   */
  private async sendLinks(job: Job, calls: LinkCall[], runtimeMs: number): Promise<boolean> {
    for (const call of calls) {
      try {
        await this.app.sendCall(call);
      } catch (error) {
        if (error instanceof ConveyorError && !(error instanceof ConnectionError)) {
          await this.finishFailed(job, { retry: false, exhausted: false, error }, runtimeMs);
        } else if (!job.settled && !job.abandoned) {
          job.settled = true;
          await this.publishFailed(
            job.delivery,
            error,
            `could not send ${call.name}, linked to task ${job.message.headers.id}`,
          );
        }
        return false;
      }
    }
    return true;
  }

  /** FAILURE; a task that ran out of retries is dead-lettered rather than acked. */
  private async finishFailed(
    job: Job,
    decision: Extract<RetryDecision, { retry: false }>,
    runtimeMs: number,
  ): Promise<void> {
    const { message, delivery } = job;
    this.emit('task-failed', { ...this.event(job), runtimeMs, error: decision.error });
    this.presence.taskEvents.failed(message.headers.id, decision.error);
    const meta = this.writer?.failure(message, delivery.queue, decision.error);
    const sendErrbacks = (): Promise<void> => this.sendErrbacks(message);
    if (decision.exhausted) {
      const why =
        decision.error instanceof Error
          ? `${decision.error.name}: ${decision.error.message}`
          : String(decision.error);
      await this.finish(
        job,
        meta,
        {
          deadLetter: `retries exhausted after ${message.headers.retries} retries; last error ${why}`,
        },
        sendErrbacks,
      );
    } else {
      await this.finish(job, meta, 'ack', sendErrbacks);
    }
  }

  /**
   * Sends a failed task's errbacks. After its FAILURE is stored, as Celery does, so an errback
   * that looks the task up finds it failed; the failure stands whatever happens to them.
   */
  private async sendErrbacks(message: TaskMessage): Promise<void> {
    for (const errback of failureLinks(message)) {
      await this.app.sendCall(errback).catch((error: unknown) => {
        this.warn(
          new Error(
            `errback ${errback.name} of task ${message.headers.id} could not be sent: ${(error as Error).message}`,
          ),
        );
      });
    }
  }

  /**
   * Stores `meta` (unless results are off for the task), runs `afterStore`, then settles the
   * message. A result that cannot be stored gives the message back unacked, so the task runs
   * again (and `afterStore` waits for that run).
   */
  private async finish(
    job: Job,
    meta: ResultMeta | undefined,
    settlement: 'ack' | 'requeue' | { deadLetter: string },
    afterStore?: () => Promise<void>,
  ): Promise<void> {
    const { message, delivery } = job;
    if (meta && this.writer && !message.headers.ignore_result) {
      // Stop retrying once the worker is shutting down: the message goes back instead.
      const giveUp = (): boolean => job.abandoned || this.state !== 'running';
      const stored = await this.writer.store(meta, giveUp, this.warn);
      if (!stored) {
        this.warn(
          new Error(`result of task ${message.headers.id} could not be stored; message requeued`),
        );
        settlement = 'requeue';
      }
    }
    if (settlement !== 'requeue') await afterStore?.();
    if (job.settled || job.abandoned) return;
    job.settled = true;
    if (settlement === 'ack') await this.safely(delivery.ack());
    else if (settlement === 'requeue') await this.safely(delivery.requeue());
    else await this.deadLetterOrRequeue(delivery, settlement.deadLetter);
  }

  private async finishRevoked(job: Job, reason: string): Promise<void> {
    this.emit('task-revoked', { ...this.event(job), reason });
    this.presence.taskEvents.revoked(job.message.headers.id, reason);
    await this.finish(job, this.writer?.revoked(job.message, job.delivery.queue, reason), 'ack');
  }

  private async revokedInBackend(job: Job): Promise<boolean> {
    return this.revocationCheck ? this.revocationCheck.isRevoked(job.message.headers.id) : false;
  }

  /** A revoke addressed to this worker: remember the ids; terminate running ones if asked. */
  private revoke(command: RevokeCommand): string[] {
    const terminated: string[] = [];
    for (const id of command.taskIds) {
      this.revocations.add(id);
      if (!command.terminate) continue;
      for (const job of this.running) {
        if (job.message.headers.id === id && job.control) {
          job.control.abort(terminatedReason(id));
          job.control.terminate();
          terminated.push(id);
        }
      }
    }
    return terminated;
  }

  /** This worker as remote-control commands see it (`celery inspect`, `celery control`). */
  private controlled(): ControlledWorker {
    const held = (job: Job) => ({
      message: job.message,
      queue: job.delivery.queue,
      redelivered: job.delivery.redelivered,
      startedAt: job.startedAt,
      acknowledged: job.settled,
    });
    const presence = (): WorkerPresence => this.presence;
    return {
      hostname: this.hostname,
      get clock() {
        return presence().clock;
      },
      stats: () =>
        workerStats({
          totals: this.totals,
          startedAtMs: this.startedAtMs,
          concurrency: this.maxConcurrency,
          prefetch: this.prefetch,
          clock: this.presence.clock.value,
          events: this.presence.eventCounts,
        }),
      activeRequests: () => [...this.running].map((job) => requestInfo(held(job), this.hostname)),
      reservedRequests: () => this.waiting.map((job) => requestInfo(held(job), this.hostname)),
      scheduledRequests: () =>
        [...this.heldJobs.values()].map((job) => ({
          eta: null,
          priority: job.message.properties.priority ?? null,
          request: requestInfo(held(job), this.hostname),
        })),
      registeredTasks: () =>
        this.app.tasks.map((d) => ({
          name: d.name,
          queue: d.queue,
          rateLimit: this.rateLimits.get(d.name),
        })),
      revokedIds: () => this.revocations.entries(),
      activeQueues: () => [...this.queues],
      revoke: (command) => this.revoke(command),
      setRateLimit: (name, rate) => this.setRateLimit(name, rate),
      setTimeLimits: (name, softMs, hardMs) => {
        if (!this.app.task(name)) return false;
        this.timeLimitOverrides.set(name, {
          softMs: softMs ?? undefined,
          hardMs: hardMs ?? undefined,
        });
        return true;
      },
      addConsumer: (queue) => this.addConsumer(queue),
      cancelConsumer: (queue) => this.cancelConsumer(queue),
      resizePool: (delta) => this.resize(Math.max(1, this.maxConcurrency + delta)),
      autoscale: (max, min) => {
        // No process pool to keep small: tasks are promises or pooled threads, so the worker
        // runs at the upper bound.
        this.resize(Math.max(1, max));
        return [this.maxConcurrency, Math.min(min, this.maxConcurrency)];
      },
      setTaskEvents: (enabled) => this.presence.setTaskEvents(enabled),
      sendHeartbeat: () => this.presence.beat(),
      shutdown: () => this.remoteShutdown(),
      conf: () => ({
        hostname: this.hostname,
        queues: this.queues,
        concurrency: this.maxConcurrency,
        prefetch_multiplier: this.prefetchMultiplier,
        task_events: this.presence.sendsTaskEvents,
        shutdown_timeout_ms: this.shutdownTimeoutMs,
      }),
      report: () =>
        `software -> conveyor ${process.version} ${process.platform} ${process.arch}\nhostname -> ${this.hostname}\npid -> ${process.pid}`,
    };
  }

  private setRateLimit(name: string, rate: string | null): boolean {
    const definition = this.app.task(name);
    if (!definition) return false;
    if (rate === null) {
      this.rateIntervals.delete(name);
      this.rateLimits.delete(name);
    } else {
      this.rateIntervals.set(name, parseRateLimit(rate, definition.label));
      this.rateLimits.set(name, rate);
    }
    return true;
  }

  /** New concurrency: more tasks may start now, and every consumer's prefetch follows. */
  private resize(concurrency: number): number {
    this.maxConcurrency = concurrency;
    for (const consumer of this.consumers.values()) {
      void consumer?.setPrefetch?.(this.prefetch).catch(this.warn);
    }
    this.pump();
    return concurrency;
  }

  private async addConsumer(queue: string): Promise<void> {
    if (this.state !== 'running' || this.consumers.has(queue)) return;
    this.consumers.set(queue, undefined);
    await this.consumeQueue(queue).catch((error: Error) => {
      this.consumers.delete(queue);
      this.warn(error);
    });
  }

  private async cancelConsumer(queue: string): Promise<void> {
    const consumer = this.consumers.get(queue);
    if (!consumer) return;
    this.consumers.delete(queue);
    await this.safely(consumer.cancel());
  }

  /**
   * The `shutdown` command: a graceful stop. A worker that owns its process (`handleSignals`, as
   * the CLI's) then closes its app and exits with the stop's code, as a Celery worker does and
   * as it would on SIGTERM.
   */
  private remoteShutdown(): void {
    void this.stop().then(async (code) => {
      if (!(this.options.handleSignals ?? true)) return;
      await this.app.close().catch(() => undefined);
      process.exit(code);
    });
  }

  /** Unknown task: stored as FAILURE (NotRegistered, as Celery does) and dead-lettered. */
  private async refuseUnknown(delivery: Delivery, message: TaskMessage): Promise<void> {
    const h = message.headers;
    const error = new NotRegisteredError(h.id, h.task);
    if (this.writer && !h.ignore_result) {
      await this.writer.store(
        this.writer.failure(message, delivery.queue, error),
        () => this.state !== 'running',
        this.warn,
      );
    }
    this.emit('message-rejected', {
      id: h.id,
      reason: `task '${h.task}' is not registered`,
      queue: delivery.queue,
    });
    await this.deadLetterOrRequeue(
      delivery,
      `task '${h.task}' is not registered on ${this.hostname}`,
    );
  }

  private async redelay(delivery: Delivery, message: TransportMessage, at: number): Promise<void> {
    try {
      await this.app.transport.publish(message, { queue: delivery.queue, deliverAt: at });
    } catch (error) {
      await this.publishFailed(
        delivery,
        error,
        `could not delay the message until ${new Date(at).toISOString()}`,
      );
      return;
    }
    await delivery.ack();
  }

  /**
   * A message derived from `delivery` (re-delayed, retried) could not be published. One the
   * broker will never take (unroutable, refused) is dead-lettered, since requeueing it would
   * loop forever; otherwise the original goes back after a pause.
   */
  private async publishFailed(delivery: Delivery, error: unknown, what: string): Promise<void> {
    this.warn(error instanceof Error ? error : new Error(String(error)));
    if (error instanceof ConveyorError && !(error instanceof ConnectionError)) {
      await this.deadLetterOrRequeue(delivery, `${what}: ${error.message}`);
    } else {
      await this.requeueLater(delivery);
    }
  }

  /**
   * Dead-letters, or gives the message back when the dead-letter copy cannot be published now
   * (a broker alarm, a lost connection): a message is never left unsettled, holding a prefetch
   * slot.
   */
  private async deadLetterOrRequeue(delivery: Delivery, reason: string): Promise<void> {
    try {
      await delivery.deadLetter(reason);
    } catch (error) {
      this.warn(error as Error);
      await this.requeueLater(delivery);
      return;
    }
    const id = delivery.message.headers.id;
    this.emit('message-dead-lettered', {
      ...(typeof id === 'string' ? { id } : {}),
      reason,
      queue: delivery.queue,
    });
  }

  /** Requeues after a pause, so a message that keeps failing cannot spin the worker. */
  private async requeueLater(delivery: Delivery): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, REQUEUE_PAUSE_MS));
    await delivery.requeue();
  }

  private async shutdown(forced: boolean): Promise<number> {
    if (this.state === 'new' || this.state === 'stopped') {
      this.state = 'stopped';
      await this.threads?.close();
      return EXIT_GRACEFUL;
    }
    this.state = 'stopping';
    clearTimeout(this.sweepTimer);
    // worker-offline goes out at once, before running tasks are waited for.
    await this.safely(this.presence.stop());
    const consumers = [...this.consumers.values()];
    for (const queue of this.consumers.keys()) this.consumers.set(queue, undefined);
    await Promise.all(consumers.map((c) => c && this.safely(c.cancel())));
    for (const job of this.waiting.splice(0)) this.giveBack(job);
    for (const [timer, job] of this.heldJobs) {
      clearTimeout(timer);
      this.giveBack(job);
    }
    this.heldJobs.clear();
    let code = EXIT_GRACEFUL;
    if (this.running.size > 0) {
      const finished = await this.waitForRunning(forced ? 0 : this.shutdownTimeoutMs);
      if (!finished) {
        code = forced ? EXIT_FORCED : EXIT_SHUTDOWN_TIMEOUT;
        for (const job of this.running) {
          this.giveBack(job);
          job.control?.abort(new Error('worker shutdown'));
          job.control?.terminate();
        }
      }
    }
    await Promise.all([...this.settling]);
    // Task events of the tasks that finished while stopping.
    this.presence.flush();
    await this.threads?.close();
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
    this.removeSignalHandlers = stopOnSignals({
      stop: () => this.stop(),
      force: () => this.shutdown(true),
      close: () => this.app.close(),
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

function needsAppModule(definition: TaskDefinition): string {
  return `${definition.label} has isolation 'thread': the worker needs \`appModule\`, the module that exports the app (the CLI sets it)`;
}
