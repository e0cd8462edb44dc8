import { RATE_LIMIT_LOCAL_WAIT_MS } from '../defaults';
import {
  MessageDecodeError,
  NotRegisteredError,
  WorkerLostError,
  type ConveyorError,
} from '../errors';
import { parseCeleryTimestamp } from '../protocol/celery-time';
import { decodeTaskMessage } from '../protocol/message-codec';
import type { TaskMessage } from '../protocol/task-message';
import { argumentTypeError } from '../serialization/argument-types';
import {
  DELIVERY_COUNT_HEADER,
  RATE_SLOT_HEADER,
  type Delivery,
  type TransportMessage,
} from '../transport/transport';
import { unsupportedCanvas } from './canvas-links';
import { judgeDelivery, type DeliveryVerdict } from './delivery-count';
import { Job, type JobScope } from './job';
import { parseRateLimit, RateLimiter } from './rate-limiter';
import type { Settlement, Settlements } from './settlement';
import type { DeadLetterKind } from './worker-events';

/** What intake needs beside what its jobs need. */
export interface IntakeScope extends JobScope {
  readonly settlements: Settlements;
  /** Largest message body accepted; a larger one is dead-lettered. */
  readonly maxBodyBytes: number | undefined;
  /** Deliveries that may end without completing, unless the task says otherwise. */
  readonly maxDeliveries: number;
  /** Queues a job that may run now. */
  schedule(job: Job): void;
}

/**
 * Turns deliveries into jobs (Celery's `strategy`): decodes the message and refuses what cannot
 * run here (malformed, unknown task, unsupported canvas, delivered too often) with a reason;
 * counts redeliveries (see `judgeDelivery`); ends expired and revoked tasks at once; sends a
 * message whose eta is ahead back to the broker; and holds rate-limited jobs until their slot,
 * here for a short wait and in the broker for a long one.
 */
export class Intake {
  private readonly rateIntervals = new Map<string, number>();
  /** The rate limits in force, as written (`'10/s'`), for `inspect registered`. */
  private readonly rateLimits = new Map<string, string>();
  private readonly rateLimiter = new RateLimiter();
  /** Rate-limited jobs waiting here for their slot, by their timer. */
  private readonly held = new Map<NodeJS.Timeout, Job>();
  /**
   * Messages given back unstarted once the worker was stopping, besides those the stop gives
   * back itself (see {@link giveBackHeld}): delivered then, or held ones whose slot came then.
   */
  private givenBackStopping = 0;

  constructor(private readonly scope: IntakeScope) {
    for (const definition of scope.host.tasks) {
      if (definition.options.rateLimit !== undefined) {
        this.rateIntervals.set(
          definition.name,
          parseRateLimit(definition.options.rateLimit, definition.label),
        );
        this.rateLimits.set(definition.name, definition.options.rateLimit);
      }
    }
  }

  /** Handles one delivery: a job scheduled or held, or the message settled with a reason. */
  receive(delivery: Delivery): void {
    const { scope } = this;
    const settlement = scope.settlements.open(delivery);
    if (!scope.isRunning()) {
      // Arrived as the worker stops: it never started here.
      this.givenBackStopping += 1;
      void settlement.giveBackUnstarted((copy) =>
        scope.host.transport.publish(copy, { queue: settlement.queue }),
      );
      return;
    }
    let message: TaskMessage;
    try {
      message = decodeTaskMessage(delivery.message, { maxBodyBytes: scope.maxBodyBytes });
    } catch (error) {
      if (error instanceof MessageDecodeError) {
        this.reject(settlement, error.reason, error.taskId, 'malformed');
      } else {
        // A bug in decoding, not a bad message: reported, and the message still dead-lettered
        // so it cannot loop.
        scope.warn(error instanceof Error ? error : new Error(String(error)));
        this.reject(settlement, `could not be decoded: ${String(error)}`, undefined, 'malformed');
      }
      return;
    }
    const definition = scope.host.task(message.headers.task);
    if (!definition) {
      const h = message.headers;
      const reason = `task '${h.task}' is not registered on ${scope.hostname}`;
      const unknown = new NotRegisteredError(h.id, h.task);
      void scope.settlements.track(this.refuse(settlement, message, unknown, reason));
      return;
    }
    const badArgument = argumentTypeError(definition, message, scope.host.validateArguments);
    if (badArgument) {
      const { stored, reason } = badArgument;
      void scope.settlements.track(this.refuse(settlement, message, stored, reason));
      return;
    }
    const verdict = judgeDelivery(
      delivery,
      definition.options.maxDeliveries ?? scope.maxDeliveries,
    );
    if (verdict.action !== 'run') {
      void scope.settlements.track(this.deliveredAgain(settlement, message, verdict));
      return;
    }
    const unsupported = unsupportedCanvas(message.embed);
    if (unsupported) {
      this.reject(settlement, unsupported, message.headers.id, 'unsupported');
      return;
    }
    const job = new Job(settlement, message, definition, scope);
    const expires = message.headers.expires
      ? parseCeleryTimestamp(message.headers.expires)!.getTime()
      : undefined;
    // Ended as it arrives, before its eta is looked at, as Celery's strategy ends it: logged
    // received (the log line comes from the worker event) but no task-received event is sent
    // for it, only task-revoked.
    if (expires !== undefined && expires <= Date.now()) {
      this.reportReceived(job, false);
      void scope.settlements.track(job.finishRevoked('expired'));
      return;
    }
    if (scope.revocations.has(message.headers.id)) {
      this.reportReceived(job, false);
      void scope.settlements.track(job.finishRevoked('revoked'));
      return;
    }
    const eta = message.headers.eta
      ? parseCeleryTimestamp(message.headers.eta)!.getTime()
      : undefined;
    if (eta !== undefined && eta > Date.now()) {
      // A future eta (a Python producer, or a retry) waits in the broker, not in this worker.
      void this.redelay(settlement, settlement.unstartedCopy(), eta);
      return;
    }
    this.admit(job);
  }

  /**
   * Messages given back unstarted because they arrived, or their rate-limit slot came, once the
   * worker was stopping.
   */
  get givenBackWhileStopping(): number {
    return this.givenBackStopping;
  }

  /** Jobs held here for their rate-limit slot. */
  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Sets a task's rate limit from the next message on (the `rate_limit` command); null removes
   * it. Throws `ConfigError` for a rate it cannot read.
   */
  setRateLimit(name: string, label: string, rate: string | null): void {
    if (rate === null) {
      this.rateIntervals.delete(name);
      this.rateLimits.delete(name);
      return;
    }
    this.rateIntervals.set(name, parseRateLimit(rate, label));
    this.rateLimits.set(name, rate);
  }

  /** The rate limit of a task now, as written. */
  rateLimitOf(name: string): string | undefined {
    return this.rateLimits.get(name);
  }

  /** The jobs held here for their rate-limit slot (`inspect scheduled`). */
  heldJobs(): Job[] {
    return [...this.held.values()];
  }

  /** Gives back the jobs held for their rate-limit slot (shutdown); returns how many. */
  giveBackHeld(): number {
    const count = this.held.size;
    for (const [timer, job] of this.held) {
      clearTimeout(timer);
      job.giveBackUnstarted();
    }
    this.held.clear();
    return count;
  }

  /**
   * Schedules a job, after its rate limit allows it: a short wait is spent here, a long one in
   * the broker, and the job is reported received only when it stays here.
   */
  private admit(job: Job): void {
    const interval = this.rateIntervals.get(job.definition.name);
    const received = job.settlement.message;
    const reserved = received.headers[RATE_SLOT_HEADER];
    let wait = typeof reserved === 'number' ? reserved - Date.now() : 0;
    if (interval !== undefined && typeof reserved !== 'number') {
      wait = this.rateLimiter.reserve(job.definition.name, interval);
      if (wait > RATE_LIMIT_LOCAL_WAIT_MS) {
        // A long wait is spent in the broker, so it holds no prefetch slot and blocks no other task.
        const slot = Date.now() + wait;
        const copy = job.settlement.unstartedCopy();
        const message = { ...copy, headers: { ...copy.headers, [RATE_SLOT_HEADER]: slot } };
        void this.redelay(job.settlement, message, slot);
        return;
      }
    }
    this.reportReceived(job, true);
    if (wait > 0) this.hold(job, wait);
    else this.scope.schedule(job);
  }

  /**
   * Reports a task received, once per delivery this worker keeps or ends on arrival, as Celery
   * does: a message sent back to wait in the broker is reported by whichever worker takes it
   * when it returns, not twice. `celeryEvent` is false for a task ended as it arrives (expired,
   * revoked), which Celery logs received but reports with task-revoked alone.
   */
  private reportReceived(job: Job, celeryEvent: boolean): void {
    this.scope.events.emit('task-received', { ...job.event, redelivered: job.redelivered });
    if (celeryEvent) this.scope.taskEvents.received(job.message);
  }

  private hold(job: Job, ms: number): void {
    const timer = setTimeout(() => {
      this.held.delete(timer);
      if (!this.scope.isRunning()) {
        this.givenBackStopping += 1;
        job.giveBackUnstarted();
        return;
      }
      this.scope.schedule(job);
    }, ms);
    this.held.set(timer, job);
  }

  /** Dead-letters a message that cannot run here, with `reason`. */
  private reject(
    settlement: Settlement,
    reason: string,
    id: string | undefined,
    kind: DeadLetterKind,
  ): void {
    this.scope.events.emit('message-rejected', { id, reason, queue: settlement.queue });
    if (id) this.scope.taskEvents.rejected(id, false);
    void settlement.deadLetter(reason, kind);
  }

  /**
   * A message this worker will not run (an unknown task: NotRegistered, as Celery does;
   * arguments of the wrong type): `error` is stored as its FAILURE, so callers learn why, and
   * the message is dead-lettered with `reason`.
   */
  private async refuse(
    settlement: Settlement,
    message: TaskMessage,
    error: ConveyorError,
    reason: string,
  ): Promise<void> {
    const { scope } = this;
    const h = message.headers;
    if (scope.writer && !h.ignore_result) {
      const giveUp = (): boolean => !scope.isRunning();
      await scope.writer.store(
        scope.writer.failure(message, settlement.queue, error),
        giveUp,
        scope.warn,
      );
      // The rest of its chain will not run either: failed with it, as Celery does.
      await scope.writer.storeChainFailures(message, error, giveUp, scope.warn);
    }
    scope.events.emit('message-rejected', { id: h.id, reason, queue: settlement.queue });
    await settlement.deadLetter(reason, 'unregistered');
  }

  /**
   * A message whose earlier deliveries ended without completing. On a classic queue it is
   * replaced by a copy carrying the count; past the cap it is dead-lettered unrun and FAILURE
   * (`WorkerLostError`) stored, so a task that kills its worker stops coming back and its
   * caller's `get()` ends.
   */
  private async deliveredAgain(
    settlement: Settlement,
    message: TaskMessage,
    verdict: Exclude<DeliveryVerdict, { action: 'run' }>,
  ): Promise<void> {
    const { scope } = this;
    if (verdict.action === 'recount') {
      await settlement.redelay(
        () => scope.host.transport.publish(verdict.message, { queue: settlement.queue }),
        'could not republish it with its delivery count',
      );
      return;
    }
    const h = message.headers;
    const reason = `delivered ${verdict.failed} times without completing`;
    if (scope.writer && !h.ignore_result) {
      await scope.writer.store(
        scope.writer.failure(message, settlement.queue, new WorkerLostError(h.id, [reason])),
        () => !scope.isRunning(),
        scope.warn,
      );
    }
    scope.events.emit('message-rejected', { id: h.id, reason, queue: settlement.queue });
    await settlement.deadLetter(reason, 'delivery-limit', {
      [DELIVERY_COUNT_HEADER]: verdict.failed,
    });
  }

  private redelay(settlement: Settlement, message: TransportMessage, at: number): Promise<void> {
    return settlement.redelay(
      () => this.scope.host.transport.publish(message, { queue: settlement.queue, deliverAt: at }),
      `could not delay the message until ${new Date(at).toISOString()}`,
    );
  }
}
