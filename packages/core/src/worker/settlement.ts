import { REQUEUE_PAUSE_MS } from '../defaults';
import { ConnectionError, ConveyorError } from '../errors';
import type { Delivery, TransportMessage } from '../transport/transport';
import { deliveredBefore, unstartedCopy } from './delivery-count';
import type { DeadLetterEvent, DeadLetterKind } from './worker-events';

/**
 * What the rest of the worker may know of a delivery: what was delivered, never how to settle
 * it. Only this module calls `ack()`, `requeue()` or `deadLetter()` (a test checks the sources).
 */
export type Receipt = Pick<Delivery, 'message' | 'queue' | 'redelivered'>;

/**
 * The settlements of one worker: opens one {@link Settlement} per delivery, and tracks every
 * settling message so shutdown can wait for them. A failure to settle is reported, never thrown.
 */
export class Settlements {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly warn: (error: Error) => void,
    /** Told of every message moved to its dead-letter queue. */
    private readonly deadLettered: (event: DeadLetterEvent) => void,
  ) {}

  /** The settlement of one delivered message. */
  open(delivery: Delivery): Settlement {
    return new Settlement(delivery, this);
  }

  /** Resolves once every settlement begun so far has ended. */
  async idle(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  /**
   * Tracks work that ends in a settlement (storing a result, then settling) so shutdown waits
   * for all of it; reports its failure instead of throwing it.
   */
  track(operation: Promise<unknown>): Promise<void> {
    // One promise per settlement (every task makes one): no `finally` on top of it.
    const tracked: Promise<void> = operation.then(
      () => {
        this.pending.delete(tracked);
      },
      (error: unknown) => {
        this.pending.delete(tracked);
        this.warn(asError(error));
      },
    );
    this.pending.add(tracked);
    return tracked;
  }

  /** Reports trouble the worker survives. */
  report(error: unknown): void {
    this.warn(asError(error));
  }

  /** Reports a message moved to its dead-letter queue. */
  reportDeadLettered(event: DeadLetterEvent): void {
    this.deadLettered(event);
  }
}

/**
 * How one delivered message ends: acked, given back or dead-lettered, exactly once. The first
 * call settles; later calls do nothing. Each returns a promise that never rejects and that
 * shutdown waits for.
 */
export class Settlement implements Receipt {
  private done = false;

  constructor(
    private readonly delivery: Delivery,
    private readonly settlements: Settlements,
  ) {}

  get message(): TransportMessage {
    return this.delivery.message;
  }

  get queue(): string {
    return this.delivery.queue;
  }

  /**
   * The message as a copy to publish in its place without having run it (an eta or a rate-limit
   * slot spent in the broker, a graceful stop): its failed-delivery count carried in a header of
   * ours, the broker's own count left behind (see {@link unstartedCopy}).
   */
  unstartedCopy(): TransportMessage {
    return unstartedCopy(this.delivery);
  }

  /**
   * True when the message was delivered before: flagged by the broker, or a copy that replaced
   * a redelivered message (see `judgeDelivery`). What `taskContext().redelivered` says.
   */
  get redelivered(): boolean {
    return deliveredBefore(this.delivery);
  }

  /** True once the message was acked, given back or dead-lettered (or that has begun). */
  get settled(): boolean {
    return this.done;
  }

  /** Removes the message from its queue for good. */
  ack(): Promise<void> {
    return this.once(() => this.delivery.ack());
  }

  /** Gives the message back to its queue now. */
  requeue(): Promise<void> {
    return this.once(() => this.delivery.requeue());
  }

  /**
   * Gives back a message whose task never started (a graceful stop): `publish` sends
   * {@link unstartedCopy} of it to its queue and, once the broker confirms it, the message is
   * acked, so the delivery counts for nothing toward `maxDeliveries`. The copy joins the tail of
   * the queue. When it cannot be published, the message is requeued as it is (and counts one).
   */
  giveBackUnstarted(publish: (copy: TransportMessage) => Promise<void>): Promise<void> {
    return this.once(async () => {
      try {
        await publish(this.unstartedCopy());
      } catch (error) {
        this.settlements.report(error);
        await this.delivery.requeue();
        return;
      }
      await this.delivery.ack();
    });
  }

  /** Gives the message back after a pause, so a message that keeps failing cannot spin the worker. */
  requeueLater(): Promise<void> {
    return this.once(() => this.requeueAfterPause());
  }

  /**
   * Dead-letters with `reason` (and `headers` added to the copy), or gives the message back when the dead-letter copy cannot be
   * published now (a broker alarm, a lost connection): a message is never left unsettled,
   * holding a prefetch slot.
   */
  deadLetter(
    reason: string,
    kind: DeadLetterKind,
    headers?: Record<string, unknown>,
  ): Promise<void> {
    return this.once(() => this.deadLetterOrRequeue(reason, kind, headers));
  }

  /**
   * Settles the message once `publish` (a copy of it, delayed until later) is confirmed: acks
   * it then, or handles the failure as {@link publishFailed} does. Settled from the start, so a
   * shutdown meanwhile does not give it back as well.
   */
  redelay(publish: () => Promise<void>, what: string): Promise<void> {
    return this.once(async () => {
      try {
        await publish();
      } catch (error) {
        await this.afterPublishFailed(error, what);
        return;
      }
      await this.delivery.ack();
    });
  }

  /**
   * A message derived from this one (a retry, a linked call) could not be published. One the
   * broker will never take (unroutable, refused) is dead-lettered, since requeueing it would
   * loop forever; otherwise the original goes back after a pause. Reported either way.
   */
  publishFailed(error: unknown, what: string): Promise<void> {
    if (this.done) {
      this.settlements.report(error);
      return Promise.resolve();
    }
    return this.once(() => this.afterPublishFailed(error, what));
  }

  private async afterPublishFailed(error: unknown, what: string): Promise<void> {
    this.settlements.report(error);
    if (error instanceof ConveyorError && !(error instanceof ConnectionError)) {
      await this.deadLetterOrRequeue(`${what}: ${error.message}`, 'unpublishable');
    } else {
      await this.requeueAfterPause();
    }
  }

  private async deadLetterOrRequeue(
    reason: string,
    kind: DeadLetterKind,
    headers?: Record<string, unknown>,
  ): Promise<void> {
    try {
      await this.delivery.deadLetter(reason, headers);
    } catch (error) {
      this.settlements.report(error);
      await this.requeueAfterPause();
      return;
    }
    const { id, task } = this.delivery.message.headers;
    this.settlements.reportDeadLettered({
      ...(typeof id === 'string' ? { id } : {}),
      ...(typeof task === 'string' ? { name: task } : {}),
      queue: this.delivery.queue,
      kind,
      reason,
    });
  }

  private async requeueAfterPause(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, REQUEUE_PAUSE_MS));
    await this.delivery.requeue();
  }

  private once(settle: () => Promise<void>): Promise<void> {
    if (this.done) return Promise.resolve();
    this.done = true;
    let operation: Promise<void>;
    try {
      operation = settle();
    } catch (error) {
      operation = Promise.reject(error);
    }
    return this.settlements.track(operation);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
