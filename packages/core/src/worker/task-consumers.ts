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
      // Cancelled (cancel_consumer) before its turn came.
      if (!this.consumers.has(queue)) continue;
      await this.consume(queue);
    }
  }

  /** Starts consuming one more queue; a failure is reported and leaves the set as it was. */
  async add(queue: string): Promise<void> {
    if (this.consumers.has(queue)) return;
    this.consumers.set(queue, undefined);
    await this.consume(queue).catch((error: Error) => {
      this.consumers.delete(queue);
      this.warn(error);
    });
  }

  /** Stops consuming a queue and forgets it (one still starting is cancelled once it has). */
  async cancel(queue: string): Promise<void> {
    const consumer = this.consumers.get(queue);
    this.consumers.delete(queue);
    this.attempts.delete(queue);
    await consumer?.cancel().catch(this.warn);
  }

  /** Stops every consumer; the queues stay known (the worker is stopping). */
  async cancelAll(): Promise<void> {
    this.stopped = true;
    const consumers = [...this.consumers.values()];
    for (const queue of this.consumers.keys()) this.consumers.set(queue, undefined);
    await Promise.all(consumers.map((c) => c?.cancel().catch(this.warn)));
  }

  /** Gives every consumer the current prefetch, where the transport can change it. */
  updatePrefetch(): void {
    const transport = this.host.transport;
    if (!hasCapability(transport, 'prefetch')) return;
    for (const consumer of this.consumers.values()) {
      if (consumer) void transport.setPrefetch(consumer, this.prefetch()).catch(this.warn);
    }
  }

  private async consume(queue: string): Promise<void> {
    const attempt = {};
    this.attempts.set(queue, attempt);
    await this.host.ensureQueue(queue);
    const prefetch = this.prefetch();
    const consumer = await this.host.transport.consume(queue, this.receive, { prefetch });
    // The worker began stopping while this consumer was starting: left running, it would hand
    // every delivery to a worker that gives it back at once. Or the queue was cancelled meanwhile
    // (cancel_consumer), perhaps added again by a consume that is now the latest.
    if (this.stopped || this.attempts.get(queue) !== attempt) {
      await consumer.cancel().catch(this.warn);
      return;
    }
    this.attempts.delete(queue);
    this.consumers.set(queue, consumer);
    // The pool was resized while it was starting.
    const transport = this.host.transport;
    if (this.prefetch() !== prefetch && hasCapability(transport, 'prefetch')) {
      void transport.setPrefetch(consumer, this.prefetch()).catch(this.warn);
    }
  }
}
