import type { ControlledWorker, RegisteredTask } from '../control/control-commands';
import type { ScheduledTaskInfo, TaskRequestInfo } from '../control/inspect';
import type { WorkerPresence } from '../events/worker-presence';
import type { LamportClock } from '../protocol/lamport-clock';
import type { RevokeCommand } from '../protocol/control-message';
import type { Intake } from './intake';
import type { Job } from './job';
import type { JobPool } from './job-pool';
import { requestInfo } from './request-info';
import type { Revocations } from './revocations';
import type { TaskConsumers } from './task-consumers';
import { terminatedReason } from './task-execution';
import type { TaskRunner } from './task-runner';
import type { WorkerHost } from './worker-host';
import { workerStats } from './worker-stats';

/** The parts of a worker that remote control reads and changes. */
export interface ControlledParts {
  readonly hostname: string;
  readonly host: WorkerHost;
  readonly pool: JobPool;
  readonly consumers: TaskConsumers;
  readonly intake: Intake;
  readonly runner: TaskRunner;
  readonly revocations: Revocations;
  readonly presence: WorkerPresence;
  readonly prefetchMultiplier: number;
  readonly shutdownTimeoutMs: number;
  readonly startedAtMs: number;
  /** Whether the worker still runs (consumers are added only then). */
  isRunning(): boolean;
  /** The graceful stop the `shutdown` command asks for. */
  shutdown(): void;
  warn(error: Error): void;
}

/**
 * A Conveyor worker as remote-control commands see it (`celery inspect`, `celery control`,
 * `app.control`): what it holds, reported in Celery's shapes, and the changes the commands make.
 */
export class WorkerControl implements ControlledWorker {
  constructor(private readonly parts: ControlledParts) {}

  get hostname(): string {
    return this.parts.hostname;
  }

  get clock(): LamportClock {
    return this.parts.presence.clock;
  }

  /** Each consumer's prefetch: concurrency × prefetch multiplier. */
  get prefetch(): number {
    return this.parts.pool.concurrency * this.parts.prefetchMultiplier;
  }

  stats(): Record<string, unknown> {
    const { pool, presence, startedAtMs } = this.parts;
    return workerStats({
      totals: pool.totals,
      startedAtMs,
      concurrency: pool.concurrency,
      prefetch: this.prefetch,
      clock: presence.clock.value,
      events: presence.eventCounts,
    });
  }

  activeRequests(): TaskRequestInfo[] {
    return this.parts.pool.runningJobs.map((job) => this.info(job));
  }

  reservedRequests(): TaskRequestInfo[] {
    return this.parts.pool.waitingJobs.map((job) => this.info(job));
  }

  scheduledRequests(): ScheduledTaskInfo[] {
    return this.parts.intake.heldJobs().map((job) => ({
      eta: null,
      priority: job.message.properties.priority ?? null,
      request: this.info(job),
    }));
  }

  registeredTasks(): RegisteredTask[] {
    return this.parts.host.tasks.map((d) => ({
      name: d.name,
      queue: d.queue,
      rateLimit: this.parts.intake.rateLimitOf(d.name),
    }));
  }

  revokedIds(): Map<string, number> {
    return this.parts.revocations.entries();
  }

  activeQueues(): string[] {
    return this.parts.consumers.queues;
  }

  revoke(command: RevokeCommand): string[] {
    const { pool, revocations, warn } = this.parts;
    const terminated: string[] = [];
    for (const id of command.taskIds) {
      revocations.add(id);
      if (!command.terminate) continue;
      const job = pool.terminate(id, terminatedReason(id));
      if (!job) continue;
      terminated.push(id);
      if (job.definition.options.isolation !== 'thread') {
        warn(
          new Error(
            `task ${id} (${job.definition.name}) was terminated: its slot is free, but its own code may still be running (only isolation: 'thread' stops it; it can listen to taskContext().signal)`,
          ),
        );
      }
    }
    return terminated;
  }

  setRateLimit(name: string, rate: string | null): boolean {
    const definition = this.parts.host.task(name);
    if (!definition) return false;
    this.parts.intake.setRateLimit(name, definition.label, rate);
    return true;
  }

  setTimeLimits(name: string, softMs: number | null, hardMs: number | null): boolean {
    if (!this.parts.host.task(name)) return false;
    this.parts.runner.setTimeLimits(name, {
      softMs: softMs ?? undefined,
      hardMs: hardMs ?? undefined,
    });
    return true;
  }

  async addConsumer(queue: string): Promise<void> {
    if (this.parts.isRunning()) await this.parts.consumers.add(queue);
  }

  cancelConsumer(queue: string): Promise<void> {
    return this.parts.consumers.cancel(queue);
  }

  resizePool(delta: number): number {
    return this.resize(this.parts.pool.concurrency + delta);
  }

  autoscale(max: number, min: number): [number, number] {
    // No process pool to keep small: tasks are promises or pooled threads, so the worker runs
    // at the upper bound.
    const concurrency = this.resize(max);
    return [concurrency, Math.min(min, concurrency)];
  }

  setTaskEvents(enabled: boolean): boolean {
    return this.parts.presence.setTaskEvents(enabled);
  }

  sendHeartbeat(): void {
    this.parts.presence.beat();
  }

  shutdown(): void {
    this.parts.shutdown();
  }

  conf(): Record<string, unknown> {
    const { hostname, consumers, pool, prefetchMultiplier, presence } = this.parts;
    return {
      hostname,
      queues: consumers.queues,
      concurrency: pool.concurrency,
      prefetch_multiplier: prefetchMultiplier,
      task_events: presence.sendsTaskEvents,
      shutdown_timeout_ms: this.parts.shutdownTimeoutMs,
    };
  }

  report(): string {
    return `software -> conveyor ${process.version} ${process.platform} ${process.arch}\nhostname -> ${this.hostname}\npid -> ${process.pid}`;
  }

  /** A new concurrency (at least 1); every consumer's prefetch follows. */
  private resize(concurrency: number): number {
    const { pool, consumers } = this.parts;
    pool.resize(Math.max(1, concurrency));
    consumers.updatePrefetch();
    return pool.concurrency;
  }

  private info(job: Job): TaskRequestInfo {
    const { settlement } = job;
    return requestInfo(
      {
        message: job.message,
        queue: settlement.queue,
        redelivered: settlement.redelivered,
        startedAt: job.startedAt,
        acknowledged: settlement.settled,
      },
      this.parts.hostname,
    );
  }
}
