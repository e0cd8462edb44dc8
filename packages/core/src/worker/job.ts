import type { EventEmitter } from 'node:events';
import type { TaskEvents } from '../events/task-events';
import { ConnectionError, ConveyorError } from '../errors';
import { celeryTimestamp } from '../protocol/celery-time';
import type { ResultMeta } from '../protocol/result-meta';
import type { TaskMessage } from '../protocol/task-message';
import { resultToWire } from '../serialization/argument-codec';
import type { TaskDefinition } from '../task/task-definition';
import {
  BROKER_DELIVERY_COUNT_HEADER,
  DELIVERY_COUNT_HEADER,
  RATE_SLOT_HEADER,
} from '../transport/transport';
import { failureLinks, successLinks, type LinkCall } from './canvas-links';
import { LazyAbort } from './lazy-abort';
import type { ResultWriter } from './result-writer';
import type { RetryDecision, RetryPolicy } from './retry-policy';
import type { RevocationCheck } from './revocation-check';
import type { Revocations } from './revocations';
import type { Settlement } from './settlement';
import type { RunControl } from './task-execution';
import type { RunRequest, TaskRunner } from './task-runner';
import type { TaskEvent, WorkerEvents } from './worker-events';
import type { WorkerHost } from './worker-host';

/** What a {@link Job} sees of its worker. */
export interface JobScope {
  readonly hostname: string;
  readonly host: WorkerHost;
  readonly writer: ResultWriter | undefined;
  readonly runner: TaskRunner;
  readonly revocations: Revocations;
  readonly revocationCheck: RevocationCheck | undefined;
  /** Where the job's events go (the worker). */
  readonly events: Pick<EventEmitter<WorkerEvents>, 'emit'>;
  /** Celery's task events on the broker (sent only while they are enabled). */
  readonly taskEvents: TaskEvents;
  /** False once the worker is stopping: stores stop retrying and the message goes back. */
  isRunning(): boolean;
  retryPolicy(taskName: string): RetryPolicy;
  warn(error: Error): void;
}

/** How a finished job's message is settled once its result is stored. */
type Ending = 'ack' | 'requeue' | { deadLetter: string };

/**
 * One task message a worker accepted, from receipt until its message is settled (Celery's
 * `Request`): runs the task, retries it, sends its links and errbacks, stores its result and
 * settles its message, or gives it back at shutdown. It settles only through its
 * {@link Settlement}.
 */
export class Job implements RunRequest {
  readonly abort = new LazyAbort();
  /** Stops the running task for good (terminates its thread); set while it runs. */
  private control?: RunControl;
  /** Set when shutdown gave the message back: the run's outcome must then be dropped. */
  private abandoned = false;
  /** Epoch ms the task started, once it did (`inspect active`). */
  startedAt?: number;

  constructor(
    readonly settlement: Settlement,
    readonly message: TaskMessage,
    readonly definition: TaskDefinition,
    private readonly scope: JobScope,
  ) {}

  get id(): string {
    return this.message.headers.id;
  }

  /** The queue the message came from. */
  get queue(): string {
    return this.settlement.queue;
  }

  /** True when the broker delivered the message before. */
  get redelivered(): boolean {
    return this.settlement.redelivered;
  }

  /** The payload of this job's task events. */
  get event(): TaskEvent {
    return { id: this.message.headers.id, name: this.message.headers.task };
  }

  /**
   * Abandons the job as its worker stops past the shutdown timeout: gives the message back unless
   * it was settled already, drops the run's outcome and aborts the task. Says what the first
   * call did: `aborted` unless the job was only finishing (its message settled, its task over),
   * `requeued` when its message went back to the queue.
   */
  abandon(reason: Error): { aborted: boolean; requeued: boolean } {
    const first = !this.abandoned;
    const requeued = first && !this.settlement.settled;
    const aborted = requeued || (first && this.isRunning);
    this.abandoned = true;
    void this.settlement.requeue();
    this.stop(reason);
    return { aborted, requeued };
  }

  /**
   * Gives back the message of a job that never started (waiting, or held for its rate limit)
   * so that this delivery does not count toward `maxDeliveries` (see `giveBackUnstarted`).
   */
  giveBackUnstarted(): void {
    this.abandoned = true;
    const { settlement, scope } = this;
    void settlement.giveBackUnstarted((copy) =>
      scope.host.transport.publish(copy, { queue: settlement.queue }),
    );
  }

  /** Aborts the running task with `reason` and terminates it where it can; no-op when not running. */
  stop(reason: Error): void {
    this.control?.abort(reason);
    this.control?.terminate();
  }

  /** Whether the task is running now (it can be stopped). */
  get isRunning(): boolean {
    return this.control !== undefined;
  }

  /** Runs the task and sees its message settled. */
  async process(): Promise<void> {
    const { message, definition, settlement, scope } = this;
    if (await this.revokedInBackend()) {
      await this.finishRevoked('revoked');
      return;
    }
    if (definition.options.acks === 'early') await settlement.ack();
    if (scope.writer && definition.options.trackStarted && !message.headers.ignore_result) {
      await scope.writer.store(
        scope.writer.started(message, settlement.queue),
        () => this.abandoned,
        scope.warn,
      );
    }
    // A revoke (with or without terminate) that came while the task was being set up: the task
    // has no abort lever before it runs, so it must be caught here, with no await in between.
    if (scope.revocations.has(message.headers.id)) {
      await this.finishRevoked('revoked');
      return;
    }
    scope.events.emit('task-started', this.event);
    scope.taskEvents.started(this.id);
    this.startedAt = Date.now();
    const startedAt = performance.now();
    const run = scope.runner.run(this);
    this.control = run.control;
    const outcome = await run.outcome;
    // The run is over: a late revoke must not reach a thread that now runs another task.
    this.control = undefined;
    const runtimeMs = performance.now() - startedAt;
    if (this.abandoned) return;
    if (outcome.kind === 'terminated' || scope.revocations.has(message.headers.id)) {
      await this.finishRevoked(outcome.kind === 'terminated' ? 'terminated' : 'revoked');
      return;
    }
    if (outcome.kind === 'success') {
      let value: unknown;
      try {
        value = resultToWire(outcome.value);
      } catch (error) {
        await this.finishFailed({ retry: false, exhausted: false, error }, runtimeMs);
        return;
      }
      // Sent before the result is stored, as Celery does: once a chain step's result is ready,
      // the next step is already on the broker.
      if (!(await this.sendLinks(successLinks(message, value), runtimeMs))) return;
      scope.events.emit('task-succeeded', { ...this.event, runtimeMs });
      scope.taskEvents.succeeded(this.id, value, runtimeMs);
      await this.finish(scope.writer?.success(message, settlement.queue, value), 'ack');
      return;
    }
    const decision = scope
      .retryPolicy(definition.name)
      .decide(outcome.error, message.headers.retries);
    if (decision.retry) {
      await this.retry(decision.delayMs, decision.error);
      return;
    }
    await this.finishFailed(decision, runtimeMs);
  }

  /** Stores REVOKED (`reason`: revoked, expired, terminated) and acks. */
  async finishRevoked(reason: string): Promise<void> {
    this.scope.events.emit('task-revoked', { ...this.event, reason });
    this.scope.taskEvents.revoked(this.id, reason);
    const meta = this.scope.writer?.revoked(this.message, this.settlement.queue, reason);
    await this.finish(meta, 'ack');
  }

  private async revokedInBackend(): Promise<boolean> {
    const check = this.scope.revocationCheck;
    return check ? check.isRevoked(this.message.headers.id) : false;
  }

  /**
   * Stores a running task's PROGRESS meta. Checked like a result (a SerializationError reaches
   * the task); a store that keeps failing is reported, and does not fail the task.
   */
  async progress(meta: unknown): Promise<void> {
    const { message, settlement, scope } = this;
    const value = resultToWire(meta, 'progress');
    if (!scope.writer || message.headers.ignore_result || this.abandoned) return;
    await scope.writer.store(
      scope.writer.progress(message, settlement.queue, value),
      () => this.abandoned || settlement.settled || !scope.isRunning(),
      scope.warn,
    );
  }

  /**
   * Retries through the broker: the same message with `retries + 1` and an eta, delayed by the
   * transport, without the delivery counts of the original (the cap counts each message afresh);
   * RETRY is stored; then the original is acked. Root and parent ids stay as they were.
   */
  private async retry(delayMs: number, error: unknown): Promise<void> {
    const { message, settlement, scope } = this;
    const due = Date.now() + delayMs;
    const headers: Record<string, unknown> = {
      ...settlement.message.headers,
      retries: message.headers.retries + 1,
      eta: celeryTimestamp(new Date(due)),
    };
    // A retry is a new message: it starts with no rate slot and no count of failed deliveries.
    delete headers[RATE_SLOT_HEADER];
    delete headers[DELIVERY_COUNT_HEADER];
    delete headers[BROKER_DELIVERY_COUNT_HEADER];
    try {
      await scope.host.transport.publish(
        { ...settlement.message, headers },
        { queue: settlement.queue, deliverAt: due },
      );
    } catch (publishError) {
      await settlement.publishFailed(publishError, 'could not publish the retry');
      return;
    }
    const meta = scope.writer?.failure(message, settlement.queue, error);
    if (meta) meta.status = 'RETRY';
    await this.finish(meta, 'ack');
    scope.events.emit('task-retried', {
      ...this.event,
      error,
      retryInMs: delayMs,
      retries: message.headers.retries + 1,
    });
    scope.taskEvents.retried(this.id, error);
  }

  /**
   * Sends what a successful task's links ask for. False when one could not be sent: a call the
   * broker or the app refuses (a bad option, an unroutable queue) fails the task; a lost
   * connection gives the message back, so the task runs again and its links are sent then.
   */
  private async sendLinks(calls: LinkCall[], runtimeMs: number): Promise<boolean> {
    for (const call of calls) {
      try {
        await this.scope.host.sendCall(call);
      } catch (error) {
        if (error instanceof ConveyorError && !(error instanceof ConnectionError)) {
          await this.finishFailed({ retry: false, exhausted: false, error }, runtimeMs);
        } else if (!this.settlement.settled) {
          await this.settlement.publishFailed(
            error,
            `could not send ${call.name}, linked to task ${this.message.headers.id}`,
          );
        }
        return false;
      }
    }
    return true;
  }

  /** FAILURE; a task that ran out of retries is dead-lettered rather than acked. */
  private async finishFailed(
    decision: Extract<RetryDecision, { retry: false }>,
    runtimeMs: number,
  ): Promise<void> {
    const { message, settlement, scope } = this;
    scope.events.emit('task-failed', { ...this.event, runtimeMs, error: decision.error });
    scope.taskEvents.failed(this.id, decision.error);
    const meta = scope.writer?.failure(message, settlement.queue, decision.error);
    // As Celery's mark_as_failure: the chain's later steps fail too, then the errbacks go.
    const afterStored = async (): Promise<void> => {
      if (scope.writer && !message.headers.ignore_result) {
        const giveUp = (): boolean => this.abandoned || !scope.isRunning();
        await scope.writer.storeChainFailures(message, decision.error, giveUp, scope.warn);
      }
      await this.sendErrbacks();
    };
    if (!decision.exhausted) {
      await this.finish(meta, 'ack', afterStored);
      return;
    }
    const why =
      decision.error instanceof Error
        ? `${decision.error.name}: ${decision.error.message}`
        : String(decision.error);
    const reason = `retries exhausted after ${message.headers.retries} retries; last error ${why}`;
    await this.finish(meta, { deadLetter: reason }, afterStored);
  }

  /**
   * Sends a failed task's errbacks. After its FAILURE is stored, as Celery does, so an errback
   * that looks the task up finds it failed; the failure stands whatever happens to them.
   */
  private async sendErrbacks(): Promise<void> {
    const { message, scope } = this;
    for (const errback of failureLinks(message)) {
      await scope.host.sendCall(errback).catch((error: unknown) => {
        scope.warn(
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
    meta: ResultMeta | undefined,
    ending: Ending,
    afterStore?: () => Promise<void>,
  ): Promise<void> {
    const { message, settlement, scope } = this;
    if (meta && scope.writer && !message.headers.ignore_result) {
      // Stop retrying once the worker is shutting down: the message goes back instead.
      const giveUp = (): boolean => this.abandoned || !scope.isRunning();
      const stored = await scope.writer.store(meta, giveUp, scope.warn);
      if (!stored) {
        scope.warn(
          new Error(`result of task ${message.headers.id} could not be stored; message requeued`),
        );
        ending = 'requeue';
      }
    }
    if (ending !== 'requeue') await afterStore?.();
    if (ending === 'ack') await settlement.ack();
    else if (ending === 'requeue') await settlement.requeue();
    else await settlement.deadLetter(ending.deadLetter, 'retries-exhausted');
  }
}
