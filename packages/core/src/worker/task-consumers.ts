import { hasCapability } from '../capability/capability';
import type { Consumer, DeliveryHandler } from '../transport/transport';
import type { WorkerHost } from './worker-host';

/**
 * A worker's consumers of its task queues, by queue. The queues are known from the start; a
 * queue's consumer exists while it is consumed. `add_consumer` and `cancel_consumer` change the
 * set, and a new concurrency changes every consumer's prefetch.
 */
export class TaskConsumers {
  private readonly consumers = new Map<string, Consumer | undefined>();
  /** The consume under way for a queue: only the latest may keep its consumer. */
  private readonly attempts = new Map<string, object>();
  /** Every consume and cancel under way; {@link cancelAll} waits for them. */
  private readonly pending = new Set<Promise<void>>();
  /**
   * Set by {@link cancelAll} for good (a worker does not start again): a consumer that finishes
   * starting after it is cancelled at once.
   */
  private stopped = false;

  /**
   * @param prefetch each consumer's prefetch now (concurrency × prefetch multiplier)
   * @param warn told of a consumer that could not be added, cancelled or resized
   */
  constructor(
    queues: Iterable<string>,
    private readonly host: WorkerHost,
    private readonly receive: DeliveryHandler,
    private readonly prefetch: () => number,
    private readonly warn: (error: Error) => void,
  ) {
    for (const queue of queues) this.consumers.set(queue, undefined);
  }

  /** The queues consumed, or to be consumed once started. */
  get queues(): string[] {
    return [...this.consumers.keys()];
  }

  has(queue: string): boolean {
    return this.consumers.has(queue);
  }

  /** Declares each queue and starts consuming it. */
  async start(): Promise<void> {
    for (const queue of this.queues) {
      if (this.stopped) return;
      // Cancelled (cancel_consumer) before its turn came, or added again (add_consumer) and
      // consumed or being consumed already.
      if (!this.consumers.has(queue) || this.consumers.get(queue) || this.attempts.has(queue)) {
        continue;
      }
      await this.consume(queue);
    }
  }

  /** Starts consuming one more queue; a failure is reported and leaves the set as it was. */
  async add(queue: string): Promise<void> {
    if (this.stopped || this.consumers.has(queue)) return;
    this.consumers.set(queue, undefined);
    await this.consume(queue, true).catch(this.warn);
  }

  /** Stops consuming a queue and forgets it (one still starting is cancelled once it has). */
  async cancel(queue: string): Promise<void> {
    const consumer = this.consumers.get(queue);
    this.consumers.delete(queue);
    this.attempts.delete(queue);
    if (consumer) await this.track(consumer.cancel().catch(this.warn));
  }

  /**
   * Stops every consumer, and waits for the consumes under way to end (each cancels what it
   * brings up), so that once it resolves no consumer of this worker runs or starts and the
   * transport can be closed. The queues stay known (the worker is stopping).
   */
  async cancelAll(): Promise<void> {
    this.stopped = true;
    const consumers = [...this.consumers.values()];
    for (const queue of this.consumers.keys()) this.consumers.set(queue, undefined);
    await Promise.all([
      ...consumers.map((c) => c?.cancel().catch(this.warn)),
      ...[...this.pending].map((p) => p.catch(() => undefined)),
    ]);
  }

  /** Gives every consumer the current prefetch, where the transport can change it. */
  updatePrefetch(): void {
    const transport = this.host.transport;
    if (!hasCapability(transport, 'prefetch')) return;
    for (const consumer of this.consumers.values()) {
      if (consumer) void transport.setPrefetch(consumer, this.prefetch()).catch(this.warn);
    }
  }

  /**
   * Consumes `queue` unless the worker stops or the queue is cancelled meanwhile. A failure is
   * thrown; `forgetOnFailure` (add_consumer) then drops the queue, if no later consume of it
   * has taken over.
   */
  private async consume(queue: string, forgetOnFailure = false): Promise<void> {
    const attempt = {};
    this.attempts.set(queue, attempt);
    await this.track(
      this.consumeFor(queue, attempt).catch((error: unknown) => {
        // A consume that a cancel or a later one replaced fails for nobody.
        if (this.attempts.get(queue) !== attempt) return;
        this.attempts.delete(queue);
        if (forgetOnFailure) this.consumers.delete(queue);
        throw error;
      }),
    );
  }

  /** Runs `work` as one of the {@link pending} that {@link cancelAll} waits for. */
  private async track(work: Promise<void>): Promise<void> {
    this.pending.add(work);
    try {
      await work;
    } finally {
      this.pending.delete(work);
    }
  }

  private async consumeFor(queue: string, attempt: object): Promise<void> {
    // The worker began stopping, or the queue was cancelled (cancel_consumer) and perhaps added
    // again by a consume that is now the latest: a consumer started then would hand every
    // delivery to a worker that gives it back at once, or consume a queue no longer wanted.
    const superseded = (): boolean => this.stopped || this.attempts.get(queue) !== attempt;
    await this.host.ensureQueue(queue);
    if (superseded()) return;
    const prefetch = this.prefetch();
    const consumer = await this.host.transport.consume(queue, this.receive, { prefetch });
    if (superseded()) {
      await consumer.cancel().catch(this.warn);
      return;
    }
    this.attempts.delete(queue);
    // Never two consumers of one queue: one already there (it should not be) goes.
    const previous = this.consumers.get(queue);
    if (previous) void this.track(previous.cancel().catch(this.warn));
    this.consumers.set(queue, consumer);
    // The pool was resized while it was starting.
    const transport = this.host.transport;
    if (this.prefetch() !== prefetch && hasCapability(transport, 'prefetch')) {
      void transport.setPrefetch(consumer, this.prefetch()).catch(this.warn);
    }
  }
}
