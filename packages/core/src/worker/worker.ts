import { EventEmitter } from 'node:events';
import { hostname as osHostname } from 'node:os';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_EXPIRY_SWEEP_INTERVAL_MS,
  DEFAULT_MAX_DELIVERIES,
  DEFAULT_PREFETCH_MULTIPLIER,
  DEFAULT_RESULT_STORE_TIMEOUT_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  EXIT_FORCED,
  EXIT_GRACEFUL,
  EXIT_SHUTDOWN_TIMEOUT,
} from '../defaults';
import type { ResultBackend } from '../backend/result-backend';
import { ConfigError, ConnectionError } from '../errors';
import { CONTROL_EXCHANGE, decodeRevoke, isAddressedTo } from '../protocol/control-message';
import type { Consumer, TransportMessage } from '../transport/transport';
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
  readonly concurrency: number;
  readonly queues: readonly string[];
  private readonly prefetch: number;
  private readonly shutdownTimeoutMs: number;
  private readonly policies = new Map<string, RetryPolicy>();
  private readonly runner: TaskRunner;
  private readonly settlements: Settlements;
  private readonly intake: Intake;
  private readonly revocations = new Revocations();
  private readonly consumers: Consumer[] = [];
  private readonly waiting: Job[] = [];
  private readonly running = new Set<Job>();
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopping?: Promise<number>;
  private removeSignalHandlers?: () => void;
  private readonly backgroundListeners: Array<() => void> = [];
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    private readonly host: WorkerHost,
    private readonly options: WorkerOptions = {},
  ) {
    super();
    this.hostname = options.hostname ?? `conveyor-${process.pid}@${osHostname()}`;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
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
    this.prefetch = this.concurrency * multiplier;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    const maxDeliveries = options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES;
    if (!Number.isInteger(maxDeliveries) || maxDeliveries < 1) {
      throw new ConfigError(
        `maxDeliveries must be a positive integer, got ${options.maxDeliveries}`,
      );
    }
    this.queues = options.queues ?? [...new Set(host.tasks.map((t) => t.queue))];
    if (this.queues.length === 0) {
      throw new ConfigError('the worker has no queues: register tasks or pass `queues`');
    }
    this.runner = new TaskRunner(this.hostname, options, this.warn);
    for (const definition of host.tasks) {
      this.policies.set(definition.name, new RetryPolicy(definition.options.retry));
      // Checked now for the tasks of this worker's queues only: a worker for 'emails' must not
      // need the constructor arguments of a service it never runs. Any other task that arrives
      // anyway (sent to one of these queues by name) is checked when it runs, and fails then.
      if (this.queues.includes(definition.queue)) this.runner.check(definition);
    }
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

  /**
   * Checks that the result backend can be reached (a ConnectionError naming the server and why,
   * rather than results that later fail to store), declares the queues, subscribes to revokes,
   * and starts consuming.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`worker ${this.hostname} was already started`);
    this.state = 'running';
    await checkBackendAtStart(this.host.backend, this.hostname);
    const transport = this.host.transport;
    this.consumers.push(
      await transport.subscribeBroadcast(CONTROL_EXCHANGE, (message) => this.control(message)),
    );
    for (const queue of this.queues) {
      await this.host.ensureQueue(queue);
      this.consumers.push(
        await transport.consume(queue, (delivery) => this.intake.receive(delivery), {
          prefetch: this.prefetch,
        }),
      );
    }
    // What the transport and backend recover from by themselves is reported here too.
    for (const part of [transport, this.host.backend]) {
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

  /** What every job of this worker sees of it. */
  private jobScope(): JobScope {
    const backend = this.host.backend;
    const storeTimeoutMs = this.options.resultStoreTimeoutMs ?? DEFAULT_RESULT_STORE_TIMEOUT_MS;
    const checkRevoked = (this.options.checkRevokedInBackend ?? true) && backend;
    return {
      hostname: this.hostname,
      host: this.host,
      writer: backend
        ? new ResultWriter(backend, this.hostname, this.host.resultExtended, storeTimeoutMs)
        : undefined,
      runner: this.runner,
      revocations: this.revocations,
      revocationCheck: checkRevoked ? new RevocationCheck(backend, this.warn) : undefined,
      events: this,
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
          this.pump();
        });
    }
  }

  /** A control message from `celery.pidbox`: remember revoked ids; terminate running ones if asked. */
  private control(message: TransportMessage): void {
    const revoke = decodeRevoke(message);
    if (!revoke || !isAddressedTo(revoke, this.hostname)) return;
    for (const id of revoke.taskIds) {
      this.revocations.add(id);
      if (!revoke.terminate) continue;
      for (const job of this.running) {
        if (job.id !== id || !job.isRunning) continue;
        job.stop(terminatedReason(id));
        if (job.definition.options.isolation !== 'thread') {
          this.warn(
            new Error(
              `task ${id} (${job.definition.name}) was terminated: its slot is free, but its own code may still be running (only isolation: 'thread' stops it; it can listen to taskContext().signal)`,
            ),
          );
        }
      }
    }
  }

  private async shutdown(forced: boolean): Promise<number> {
    if (this.state === 'new' || this.state === 'stopped') {
      this.state = 'stopped';
      await this.runner.close();
      return EXIT_GRACEFUL;
    }
    this.state = 'stopping';
    clearTimeout(this.sweepTimer);
    await Promise.all(this.consumers.splice(0).map((c) => this.safely(c.cancel())));
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
    await this.runner.close();
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
