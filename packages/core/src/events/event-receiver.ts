import { randomUUID } from 'node:crypto';
import { LamportClock } from '../protocol/lamport-clock';
import { CONTROL_EXCHANGE, encodeControlRequest } from '../protocol/control-message';
import { requireCapability } from '../capability/capability';
import type { Consumer, Transport } from '../transport/transport';
import { adjustTimestamp, decodeEvents, EVENT_EXCHANGE, type CeleryEvent } from './celery-event';

/** Celery's `event_queue_ttl`: an event waits at most 5 s in a receiver's queue. */
export const DEFAULT_EVENT_QUEUE_TTL_MS = 5_000;
/** Celery's `event_queue_expires`: a receiver's queue outlives its consumer by 60 s. */
export const DEFAULT_EVENT_QUEUE_EXPIRES_MS = 60_000;

/** Options of an {@link EventReceiver}. */
export interface EventReceiverOptions {
  /** Topic binding: `#` for every event, `task.#`, `worker.heartbeat`... @defaultValue `'#'` */
  routingKey?: string;
  /** How long an event may wait in the receiver's queue (Celery's `event_queue_ttl`). @defaultValue 5_000 */
  queueTtlMs?: number;
  /** How long the queue outlives its consumer (Celery's `event_queue_expires`). @defaultValue 60_000 */
  queueExpiresMs?: number;
  /** The queue is `<queuePrefix>.<nodeId>`. @defaultValue `'celeryev'` */
  queuePrefix?: string;
  /** @defaultValue a random uuid */
  nodeId?: string;
  /**
   * Once consuming, ask every worker for a heartbeat now (Celery's `wakeup_workers`), so the
   * cluster is known at once instead of within a heartbeat interval. @defaultValue true
   */
  wakeup?: boolean;
  /**
   * Move each event's `timestamp` by the sender's `utcoffset` minus ours, in hours, as Celery's
   * receiver does (`localize`). Off by default: Celery and Conveyor both stamp events with Unix
   * time, which is the same in every zone, so moving it makes the times of workers in other
   * zones wrong by whole hours (Celery's receivers show them so).
   * @defaultValue false
   */
  localize?: boolean;
}

/** Handles one event; a handler that throws is the caller's bug and is not retried. */
export type EventHandler = (event: CeleryEvent) => void;

/**
 * Receives Celery events (from Conveyor and Python workers and producers alike) through a queue
 * of its own bound to `celeryev`, declared as Celery's `EventReceiver` declares it: named
 * `celeryev.<id>`, not durable, deleted with its consumer, with a message TTL and an expiry, so a
 * receiver that goes away leaves nothing behind. Each event gets `local_received` (Unix seconds).
 */
export class EventReceiver {
  private readonly handlers = new Map<string, Set<EventHandler>>();
  private readonly clock = new LamportClock();
  private consumer?: Consumer;

  constructor(
    private readonly transport: Transport,
    private readonly options: EventReceiverOptions = {},
  ) {}

  /** Calls `handler` for every event of `type` (`'*'`: every event). Returns the unsubscribe. */
  on(type: string, handler: EventHandler): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Starts consuming (idempotent). Resolves once the queue is bound. */
  async start(): Promise<void> {
    if (this.consumer) return;
    const transport = requireCapability(
      this.transport,
      'exchanges',
      'an event receiver',
      '@conveyor/amqp-transport (or the memory transport)',
    );
    const o = this.options;
    await transport.declareExchange(EVENT_EXCHANGE);
    this.consumer = await transport.subscribeExchange(
      EVENT_EXCHANGE.name,
      o.routingKey ?? '#',
      (message) => {
        for (const event of decodeEvents(message)) this.dispatch(event);
      },
      {
        queue: `${o.queuePrefix ?? 'celeryev'}.${o.nodeId ?? randomUUID()}`,
        messageTtlMs: o.queueTtlMs ?? DEFAULT_EVENT_QUEUE_TTL_MS,
        expiresMs: o.queueExpiresMs ?? DEFAULT_EVENT_QUEUE_EXPIRES_MS,
      },
    );
    if (o.wakeup ?? true) {
      await this.transport.broadcast(
        CONTROL_EXCHANGE,
        encodeControlRequest(
          { method: 'heartbeat', arguments: {} },
          { clock: this.clock.forward() },
        ),
      );
    }
  }

  /** Stops consuming; the queue goes with its consumer. */
  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.cancel();
  }

  private dispatch(event: CeleryEvent): void {
    // task-sent comes from clients, which never sync their clocks (Celery's CLIENT_CLOCK_SKEW).
    if (event.type === 'task-sent') event.clock = Math.max(this.clock.value, 1) - 1;
    else if (typeof event.clock === 'number') this.clock.adjust(event.clock);
    else event.clock = this.clock.forward();
    if (
      this.options.localize === true &&
      typeof event.timestamp === 'number' &&
      typeof event.utcoffset === 'number'
    ) {
      event.timestamp = adjustTimestamp(event.timestamp, event.utcoffset);
    }
    event.local_received = Date.now() / 1000;
    for (const handler of this.handlers.get(event.type) ?? []) handler(event);
    for (const handler of this.handlers.get('*') ?? []) handler(event);
  }
}
