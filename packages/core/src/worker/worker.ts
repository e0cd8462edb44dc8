import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import {
  DEFAULT_EXPIRY_SWEEP_INTERVAL_MS,
  DEFAULT_RESULT_STORE_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  EXIT_FORCED,
  EXIT_GRACEFUL,
  EXIT_SHUTDOWN_TIMEOUT,
} from '../defaults';
import type { ResultBackend } from '../backend/result-backend';
import { ConfigError, ConnectionError } from '../errors';
import { hasCapability } from '../capability/capability';
import type { ControlledWorker } from '../control/control-commands';
import { WorkerPresence } from '../events/worker-presence';
import type { RevokeCommand } from '../protocol/control-message';
import type { Consumer } from '../transport/transport';
import { checkWorkerLimits } from './consumption-rules';
import { Intake } from './intake';
import type { Job, JobScope } from './job';
import { stopOnSignals } from './process-signals';
import { ResultWriter } from './result-writer';
import { RetryPolicy } from './retry-policy';
import { RevocationCheck } from './revocation-check';
import { Revocations } from './revocations';
import { Settlements } from './settlement';
import { terminatedReason } from './task-execution';
import { TaskRunner } from './task-runner';
import type { WorkerEvents } from './worker-events';
import type { WorkerHost } from './worker-host';
import type { WorkerOptions } from './worker-options';
import { requestInfo } from './request-info';
import { workerStats } from './worker-stats';

/**
 * Consumes task messages and runs them. At-least-once by default: a message is acked only after
 * its task finished and the result was stored. Malformed messages and unknown tasks are
 * dead-lettered with a reason and never stop the worker.
 *
 * The worker itself keeps the lifecycle (start, stop, signals), the consumers and the scheduling
 * of jobs; {@link Intake} turns deliveries into jobs, a {@link Job} owns one message until it is
 * settled, {@link TaskRunner} runs tasks and {@link Settlements} settles messages.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  /** The worker's name (`conveyor-<pid>@<host>`). */
  readonly hostname: string;
  private maxConcurrency: number;
  private readonly prefetchMultiplier: number;
  private readonly shutdownTimeoutMs: number;
  private readonly policies = new Map<string, RetryPolicy>();
  private readonly runner: TaskRunner;
  private readonly settlements: Settlements;
  private readonly intake: Intake;
  private readonly revocations = new Revocations();
  /** The task queue consumers, by queue; `add_consumer`/`cancel_consumer` change them. */
  private readonly consumers = new Map<string, Consumer | undefined>();
  private readonly presence: WorkerPresence;
  /** Tasks started, by name, and in all (`inspect stats`, heartbeats). */
  private readonly totals = new Map<string, number>();
  private processed = 0;
  private readonly startedAtMs = Date.now();
  private readonly waiting: Job[] = [];
  private readonly running = new Set<Job>();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping?: Promise<number>;
  private removeSignalHandlers?: () => void;
  private readonly backgroundListeners: Array<() => void> = [];
  private sweepTimer?: NodeJS.Timeout;
  private stopReconnectNotices?: () => void;

  constructor(
    private readonly host: WorkerHost,
    private readonly options: WorkerOptions = {},
  ) {
    super();
    this.hostname = options.hostname ?? `conveyor-${process.pid}@${osHostname()}`;
    const { concurrency, prefetchMultiplier, maxDeliveries } = checkWorkerLimits(options);
    this.maxConcurrency = concurrency;
    this.prefetchMultiplier = prefetchMultiplier;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    for (const queue of options.queues ?? new Set(host.tasks.map((t) => t.queue))) {
      this.consumers.set(queue, undefined);
    }
    if (this.consumers.size === 0) {
      throw new ConfigError('the worker has no queues: register tasks or pass `queues`');
    }
    this.runner = new TaskRunner(this.hostname, options, this.warn);
    for (const definition of host.tasks) {
      this.policies.set(definition.name, new RetryPolicy(definition.options.retry));
      // Checked now for the tasks of this worker's queues only: a worker for 'emails' must not
      // need the constructor arguments of a service it never runs. Any other task that arrives
      // anyway (sent to one of these queues by name) is checked when it runs, and fails then.
      if (this.consumers.has(definition.queue)) this.runner.check(definition);
    }
    this.presence = new WorkerPresence(
      host.transport,
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
    this.settlements = new Settlements(this.warn, (event) =>
      this.emit('message-dead-lettered', event),
    );
    this.intake = new Intake({
      ...this.jobScope(),
      settlements: this.settlements,
      maxBodyBytes: options.maxBodyBytes,
      maxDeliveries,
      schedule: (job) => {
        this.waiting.push(job);
        this.pump();
      },
    });
  }

  /** Tasks running now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Task messages received and not yet running: waiting for a slot or for their rate limit. */
  get prefetchedCount(): number {
    return this.waiting.length + this.intake.heldCount;
  }

  /** Tasks run at once; the `pool_grow`/`pool_shrink`/`autoscale` commands change it. */
  get concurrency(): number {
    return this.maxConcurrency;
  }

  /** The queues consumed; the `add_consumer`/`cancel_consumer` commands change them. */
  get queues(): readonly string[] {
    return [...this.consumers.keys()];
  }

  /** Celery events this worker sent, and dropped (no connection, the broker pushing back). */
  get eventCounts(): { sent: number; dropped: number } {
    return this.presence.eventCounts;
  }

  /** Each consumer's prefetch: concurrency × prefetchMultiplier. */
  private get prefetch(): number {
    return this.maxConcurrency * this.prefetchMultiplier;
  }

  /**
   * Checks that the result backend can be reached (a ConnectionError naming the server and why,
   * rather than results that later fail to store), starts answering remote control and sending
   * events, declares the queues, and starts consuming.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`worker ${this.hostname} was already started`);
    this.state = 'running';
    await checkBackendAtStart(this.host.backend, this.hostname);
    const transport = this.host.transport;
    this.stopReconnectNotices = transport.onReconnected?.((connection) =>
      this.emit('broker-reconnected', { connection }),
    );
    // Remote control first (revokes must not be missed), then the task queues.
    await this.presence.start();
    for (const queue of this.queues) await this.consumeQueue(queue);
    // What the transport and backend recover from by themselves is reported here too.
    for (const part of [this.host.transport, this.host.backend]) {
      const stop = part?.onBackgroundError?.((error) => this.warn(error));
      if (stop) this.backgroundListeners.push(stop);
    }
    if (this.options.handleSignals ?? true) this.installSignalHandlers();
    this.scheduleExpirySweeps();
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
    await this.host.ensureQueue(queue);
    this.consumers.set(
      queue,
      await this.host.transport.consume(queue, (delivery) => this.intake.receive(delivery), {
        prefetch: this.prefetch,
      }),
    );
  }

  /** What every job of this worker sees of it. */
  private jobScope(): JobScope {
    const backend = this.host.backend;
    const storeTimeoutMs = this.options.resultStoreTimeoutMs ?? DEFAULT_RESULT_STORE_TIMEOUT_MS;
    const checkRevoked = (this.options.checkRevokedInBackend ?? true) && backend;
    return {
      hostname: this.hostname,
      host: this.host,
      writer: backend
        ? new ResultWriter(
            backend,
            this.hostname,
            this.host.resultExtended,
            storeTimeoutMs,
            (event) => this.emit('result-stored', event),
          )
        : undefined,
      runner: this.runner,
      revocations: this.revocations,
      revocationCheck: checkRevoked ? new RevocationCheck(backend, this.warn) : undefined,
      events: this,
      taskEvents: this.presence.taskEvents,
      isRunning: () => this.state === 'running',
      retryPolicy: (name) => this.policies.get(name)!,
      warn: this.warn,
    };
  }

  /** Periodic result expiry for backends that need it; one sweep at a time across workers is the backend's job. */
  private scheduleExpirySweeps(): void {
    const backend = this.host.backend;
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

  private pump(): void {
    while (
      this.state === 'running' &&
      this.running.size < this.concurrency &&
      this.waiting.length > 0
    ) {
      const job = this.waiting.shift()!;
      this.running.add(job);
      const name = job.definition.name;
      this.totals.set(name, (this.totals.get(name) ?? 0) + 1);
      void job
        .process()
        .catch((error: unknown) => {
          // A bug must not take the process down with every task it holds: report it and give
          // the message back, unless it was settled already.
          this.warn(error instanceof Error ? error : new Error(String(error)));
          void job.settlement.requeueLater();
        })
        .finally(() => {
          this.running.delete(job);
          this.processed += 1;
          this.pump();
        });
    }
  }

  /** A revoke addressed to this worker: remember the ids; terminate running ones if asked. */
  private revoke(command: RevokeCommand): string[] {
    const terminated: string[] = [];
    for (const id of command.taskIds) {
      this.revocations.add(id);
      if (!command.terminate) continue;
      for (const job of this.running) {
        if (job.id !== id || !job.isRunning) continue;
        job.stop(terminatedReason(id));
        terminated.push(id);
        if (job.definition.options.isolation !== 'thread') {
          this.warn(
            new Error(
              `task ${id} (${job.definition.name}) was terminated: its slot is free, but its own code may still be running (only isolation: 'thread' stops it; it can listen to taskContext().signal)`,
            ),
          );
        }
      }
    }
    return terminated;
  }

  /** This worker as remote-control commands see it (`celery inspect`, `celery control`). */
  private controlled(): ControlledWorker {
    const held = (job: Job) => ({
      message: job.message,
      queue: job.settlement.queue,
      redelivered: job.settlement.redelivered,
      startedAt: job.startedAt,
      acknowledged: job.settlement.settled,
    });
    const info = (job: Job) => requestInfo(held(job), this.hostname);
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
      activeRequests: () => [...this.running].map(info),
      reservedRequests: () => this.waiting.map(info),
      scheduledRequests: () =>
        this.intake.heldJobs().map((job) => ({
          eta: null,
          priority: job.message.properties.priority ?? null,
          request: info(job),
        })),
      registeredTasks: () =>
        this.host.tasks.map((d) => ({
          name: d.name,
          queue: d.queue,
          rateLimit: this.intake.rateLimitOf(d.name),
        })),
      revokedIds: () => this.revocations.entries(),
      activeQueues: () => [...this.queues],
      revoke: (command) => this.revoke(command),
      setRateLimit: (name, rate) => {
        const definition = this.host.task(name);
        if (!definition) return false;
        this.intake.setRateLimit(name, definition.label, rate);
        return true;
      },
      setTimeLimits: (name, softMs, hardMs) => {
        if (!this.host.task(name)) return false;
        this.runner.setTimeLimits(name, {
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
        queues: [...this.queues],
        concurrency: this.maxConcurrency,
        prefetch_multiplier: this.prefetchMultiplier,
        task_events: this.presence.sendsTaskEvents,
        shutdown_timeout_ms: this.shutdownTimeoutMs,
      }),
      report: () =>
        `software -> conveyor ${process.version} ${process.platform} ${process.arch}\nhostname -> ${this.hostname}\npid -> ${process.pid}`,
    };
  }

  /** New concurrency: more tasks may start now, and every consumer's prefetch follows. */
  private resize(concurrency: number): number {
    this.maxConcurrency = concurrency;
    const transport = this.host.transport;
    if (hasCapability(transport, 'prefetch')) {
      for (const consumer of this.consumers.values()) {
        if (consumer) void transport.setPrefetch(consumer, this.prefetch).catch(this.warn);
      }
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
      await this.host.close().catch(() => undefined);
      process.exit(code);
    });
  }

  private async shutdown(forced: boolean): Promise<number> {
    if (this.state === 'new' || this.state === 'stopped') {
      this.state = 'stopped';
      await this.runner.close();
      return EXIT_GRACEFUL;
    }
    this.state = 'stopping';
    clearTimeout(this.sweepTimer);
    // worker-offline goes out at once, before running tasks are waited for.
    await this.safely(this.presence.stop());
    const consumers = [...this.consumers.values()];
    for (const queue of this.consumers.keys()) this.consumers.set(queue, undefined);
    await Promise.all(consumers.map((c) => c && this.safely(c.cancel())));
    for (const job of this.waiting.splice(0)) job.giveBackUnstarted();
    this.intake.giveBackHeld();
    let code = EXIT_GRACEFUL;
    if (this.running.size > 0) {
      const finished = await this.waitForRunning(forced ? 0 : this.shutdownTimeoutMs);
      if (!finished) {
        code = forced ? EXIT_FORCED : EXIT_SHUTDOWN_TIMEOUT;
        for (const job of this.running) {
          job.giveBack();
          job.stop(new Error('worker shutdown'));
        }
      }
    }
    await this.settlements.idle();
    // Task events of the tasks that finished while stopping.
    this.presence.flush();
    await this.runner.close();
    this.stopReconnectNotices?.();
    this.removeSignalHandlers?.();
    for (const stop of this.backgroundListeners.splice(0)) stop();
    this.state = 'stopped';
    return code;
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
      close: () => this.host.close(),
    });
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

/** The backend's `connect()`, its failure restated as why the worker cannot start. */
async function checkBackendAtStart(
  backend: ResultBackend | undefined,
  hostname: string,
): Promise<void> {
  try {
    await backend?.connect();
  } catch (error) {
    throw new ConnectionError(
      `worker ${hostname} cannot start: its result backend cannot be reached: ${(error as Error).message}`,
      { cause: error },
    );
  }
}
