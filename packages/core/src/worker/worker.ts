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
import { WorkerPresence } from '../events/worker-presence';
import { checkWorkerLimits } from './consumption-rules';
import { Intake } from './intake';
import type { JobScope } from './job';
import { JobPool } from './job-pool';
import { stopOnSignals } from './process-signals';
import { ResultWriter } from './result-writer';
import { RetryPolicy } from './retry-policy';
import { RevocationCheck } from './revocation-check';
import { Revocations } from './revocations';
import { Settlements } from './settlement';
import { TaskConsumers } from './task-consumers';
import { TaskRunner } from './task-runner';
import type { WorkerEvents } from './worker-events';
import type { WorkerHost } from './worker-host';
import { WorkerControl } from './worker-control';
import type { WorkerOptions } from './worker-options';

/**
 * Consumes task messages and runs them. At-least-once by default: a message is acked only after
 * its task finished and the result was stored. Malformed messages and unknown tasks are
 * dead-lettered with a reason and never stop the worker.
 *
 * The worker itself keeps the lifecycle (start, stop, signals) and wires its parts:
 * {@link TaskConsumers} receive deliveries, {@link Intake} turns them into jobs, {@link JobPool}
 * runs them up to the concurrency, a {@link Job} owns one message until it is settled,
 * {@link TaskRunner} runs tasks, {@link Settlements} settles messages, {@link WorkerPresence}
 * sends its events and answers remote control, which {@link WorkerControl} serves.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  /** The worker's name (`conveyor-<pid>@<host>`). */
  readonly hostname: string;
  private readonly shutdownTimeoutMs: number;
  private readonly policies = new Map<string, RetryPolicy>();
  private readonly runner: TaskRunner;
  private readonly settlements: Settlements;
  private readonly intake: Intake;
  private readonly pool: JobPool;
  private readonly consumers: TaskConsumers;
  private readonly revocations = new Revocations();
  private readonly presence: WorkerPresence;
  private readonly control: WorkerControl;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  /** The start, kept so that a stop that comes while a failed start undoes itself can wait. */
  private starting?: Promise<void>;
  /** A failed start is undoing itself (quietly: it was never running). */
  private undoing = false;
  private stopping?: Promise<number>;
  /** A forced stop (a second signal) gave running tasks back. */
  private forcedOut = false;
  /** What the stop did to unfinished tasks, over both stops when a second signal forces one. */
  private readonly stopCounts = { aborted: 0, requeued: 0, unstarted: 0 };
  /** `worker-stopped` went out: the first stop to end reports it, the process may exit then. */
  private stopReported = false;
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
    const {
      concurrency,
      prefetchMultiplier: multiplier,
      maxDeliveries,
    } = checkWorkerLimits(options);
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    this.pool = new JobPool(concurrency, () => this.state === 'running', this.warn);
    this.consumers = new TaskConsumers(
      options.queues ?? new Set(host.tasks.map((t) => t.queue)),
      host,
      (delivery) => this.intake.receive(delivery),
      () => this.control.prefetch,
      this.warn,
    );
    if (this.consumers.queues.length === 0) {
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
      () => ({ active: this.pool.runningCount, processed: this.pool.processed }),
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
      schedule: (job) => this.pool.add(job),
    });
    this.control = new WorkerControl({
      hostname: this.hostname,
      host,
      pool: this.pool,
      consumers: this.consumers,
      intake: this.intake,
      runner: this.runner,
      revocations: this.revocations,
      presence: this.presence,
      prefetchMultiplier: multiplier,
      shutdownTimeoutMs: this.shutdownTimeoutMs,
      startedAtMs: Date.now(),
      isRunning: () => this.state === 'running',
      shutdown: () => this.remoteShutdown(),
      warn: this.warn,
    });
  }

  /** Tasks running now. */
  get activeCount(): number {
    return this.pool.runningCount;
  }

  /** Task messages received and not yet running: waiting for a slot or for their rate limit. */
  get prefetchedCount(): number {
    return this.pool.waitingJobs.length + this.intake.heldCount;
  }

  /** Tasks run at once; the `pool_grow`/`pool_shrink`/`autoscale` commands change it. */
  get concurrency(): number {
    return this.pool.concurrency;
  }

  /** The queues consumed; the `add_consumer`/`cancel_consumer` commands change them. */
  get queues(): readonly string[] {
    return this.consumers.queues;
  }

  /** Celery events this worker sent, and dropped (no connection, the broker pushing back). */
  get eventCounts(): { sent: number; dropped: number } {
    return this.presence.eventCounts;
  }

  /**
   * Checks that the result backend can be reached (a ConnectionError naming the server and why,
   * rather than results that later fail to store), starts answering remote control and sending
   * events, declares the queues, and starts consuming.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new ConfigError(`worker ${this.hostname} was already started`);
    this.state = 'running';
    this.starting = this.startParts();
    await this.starting;
  }

  /**
   * Whether the worker runs: started, and no stop begun. A stop that came during
   * {@link start} lets the start end early, so a caller may check this after it.
   */
  get running(): boolean {
    return this.state === 'running';
  }

  /**
   * The steps of {@link start}; once a stop has begun, the next step is skipped. The stop does not
   * wait for a backend connect under way (nothing to undo there); the parts it stops (presence,
   * consumers) wait for their broker step under way and stop what it brought up, so nothing
   * reaches the transport after the stop.
   */
  private async startParts(): Promise<void> {
    try {
      await checkBackendAtStart(this.host.backend, this.hostname);
      if (this.state !== 'running') return;
      const transport = this.host.transport;
      this.stopReconnectNotices = transport.onReconnected?.((connection) =>
        this.emit('broker-reconnected', { connection }),
      );
      // Remote control first (revokes must not be missed), then the task queues.
      await this.presence.start(this.control);
      if (this.state !== 'running') return;
      await this.consumers.start();
    } catch (error) {
      // A stop under way releases everything itself, once the tasks it waits for end.
      if (this.state !== 'running') throw error;
      // Never started: undone quietly, so no stop is reported for it (no stop events or logs).
      this.undoing = true;
      this.state = 'stopping';
      await this.consumers.cancelAll();
      await this.release(() => undefined);
      throw error;
    }
    if (this.state !== 'running') return;
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
    if (this.undoing) {
      // A failed start is undoing itself, quietly: nothing ran, so no stop is reported.
      await this.starting?.catch(() => undefined);
      return EXIT_GRACEFUL;
    }
    this.state = 'stopping';
    const timeoutMs = forced ? 0 : this.shutdownTimeoutMs;
    this.emit('worker-stopping', { running: this.pool.runningCount, timeoutMs, forced });
    clearTimeout(this.sweepTimer);
    // worker-offline goes out at once, before running tasks are waited for; remote control
    // answers until they end, so a revoke can still terminate one.
    this.presence.goOffline();
    await this.consumers.cancelAll();
    const counts = this.stopCounts;
    counts.unstarted += this.pool.giveBackWaiting() + this.intake.giveBackHeld();
    let code = EXIT_GRACEFUL;
    if (!(await this.pool.whenIdle(timeoutMs))) {
      code = forced ? EXIT_FORCED : EXIT_SHUTDOWN_TIMEOUT;
      this.forcedOut ||= forced;
      const { aborted, requeued } = this.pool.abandonRunning(new Error('worker shutdown'));
      counts.aborted += aborted;
      counts.requeued += requeued;
    }
    // A forced stop that cut this graceful one short decides its code too.
    if (this.forcedOut) code = EXIT_FORCED;
    await this.settlements.idle();
    await this.release(this.warn);
    if (!this.stopReported) {
      this.stopReported = true;
      // Deliveries can still arrive while the consumers are being cancelled.
      const unstarted = counts.unstarted + this.intake.givenBackWhileStopping;
      this.emit('worker-stopped', { exitCode: code, ...counts, unstarted });
    }
    return code;
  }

  /**
   * The last of a stop, or of a start that failed: the task events still batched, then no more
   * remote control; threads, listeners and signal handlers let go. `onError` hears what failed.
   */
  private async release(onError: (error: Error) => void): Promise<void> {
    await this.presence.stop().catch(onError);
    await this.runner.close();
    this.stopReconnectNotices?.();
    this.removeSignalHandlers?.();
    for (const stop of this.backgroundListeners.splice(0)) stop();
    this.state = 'stopped';
  }

  private installSignalHandlers(): void {
    this.removeSignalHandlers = stopOnSignals({
      stop: () => this.stop(),
      // From now on stop() (and so app.close()) waits for the forced stop, not the graceful one.
      force: () => (this.stopping = this.shutdown(true)),
      close: () => this.host.close(),
    });
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
