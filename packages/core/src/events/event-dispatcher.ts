import { LamportClock } from '../protocol/lamport-clock';
import { requireCapability } from '../capability/capability';
import type { Transport } from '../transport/transport';
import type { TransportWith } from '../capability/capability';
import {
  EVENT_EXCHANGE,
  celeryUtcOffset,
  encodeEvent,
  eventGroup,
  eventRoutingKey,
  type CeleryEvent,
} from './celery-event';

/** Options of an {@link EventDispatcher}. */
export interface EventDispatcherOptions {
  /** The node name events are sent as. */
  hostname: string;
  /** Groups sent (`worker`, `task`); others are ignored. @defaultValue every group */
  groups?: Iterable<string>;
  /** The clock to stamp events with. @defaultValue a clock of its own */
  clock?: LamportClock;
  /**
   * Groups whose events are sent in batches, as Celery's workers send task events: one message
   * (a JSON list, routing key `<group>.multi`) per `bufferLimit` events or `bufferMs`, whichever
   * comes first, so the broker routes a message per batch instead of four per task.
   * @defaultValue none
   */
  bufferGroups?: Iterable<string>;
  /** Events per batch. @defaultValue 24 (Celery's) */
  bufferLimit?: number;
  /** Longest an event waits in a batch, in ms. @defaultValue 100 */
  bufferMs?: number;
}

/** What an {@link EventDispatcher} did with the events it was given. */
export interface EventDispatchCounts {
  /** Handed to the broker connection. */
  sent: number;
  /** Dropped: not connected, the broker pushing back, or the exchange not declared yet. */
  dropped: number;
}

/**
 * Sends Celery events on the `celeryev` exchange, fire-and-forget: `send()` never waits and
 * never throws, so events cannot slow or fail a task. Events of the `bufferGroups` go in batches. An event that cannot go now (no
 * connection, the broker pushing back) is dropped and counted, never buffered: events describe
 * the present, and a backlog would only grow while the broker is in trouble.
 */
export class EventDispatcher {
  /** The groups sent now; `enable_events`/`disable_events` add and remove `task`. */
  readonly groups: Set<string> | undefined;
  readonly hostname: string;
  readonly clock: LamportClock;
  private readonly counts: EventDispatchCounts = { sent: 0, dropped: 0 };
  /** The transport, once the exchange is declared (events are dropped until then). */
  private exchanges?: TransportWith<'exchanges'>;
  private readonly bufferGroups: Set<string>;
  private readonly bufferLimit: number;
  private readonly bufferMs: number;
  private readonly buffers = new Map<string, CeleryEvent[]>();
  private flushTimer?: NodeJS.Timeout;
  private offset = 0;
  private offsetCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly transport: Transport,
    options: EventDispatcherOptions,
  ) {
    this.hostname = options.hostname;
    this.groups = options.groups ? new Set(options.groups) : undefined;
    this.clock = options.clock ?? new LamportClock();
    this.bufferGroups = new Set(options.bufferGroups ?? []);
    this.bufferLimit = options.bufferLimit ?? 24;
    this.bufferMs = options.bufferMs ?? 100;
  }

  /**
   * Declares the event exchange. Rejects with a `ConfigError` when the transport cannot carry
   * events, or a `ConnectionError` when the broker is unreachable; until it resolves, events are
   * dropped.
   */
  async open(): Promise<void> {
    const transport = requireCapability(
      this.transport,
      'exchanges',
      'Celery events',
      '@conveyor/amqp-transport (or the memory transport)',
    );
    await transport.declareExchange(EVENT_EXCHANGE);
    this.exchanges = transport;
  }

  /** Whether events of `group` are sent. */
  sends(group: string): boolean {
    return this.groups === undefined || this.groups.has(group);
  }

  /**
   * Sends one event of `type` with `fields` (and Celery's `hostname`, `utcoffset`, `pid`,
   * `clock`, `timestamp`). False when its group is off or it was dropped at once (not opened,
   * or not encodable); a drop by the transport shows in {@link stats} a moment later.
   */
  send(type: string, fields: Record<string, unknown> = {}): boolean {
    const group = eventGroup(type);
    if (!this.sends(group)) return false;
    if (!this.exchanges) {
      this.counts.dropped += 1;
      return false;
    }
    const event: CeleryEvent = {
      hostname: this.hostname,
      utcoffset: this.utcOffset(),
      pid: process.pid,
      clock: this.clock.forward(),
      timestamp: Date.now() / 1000,
      ...fields,
      type,
    };
    if (this.bufferGroups.has(group)) return this.buffer(group, event);
    return this.publish(eventRoutingKey(type), event, 1);
  }

  /**
   * This process's Celery utcoffset, computed at most once a minute: it is asked for every event,
   * and it changes only when daylight saving time does.
   */
  private utcOffset(): number {
    const now = Date.now();
    if (now >= this.offsetCheckedAt + 60_000) {
      this.offset = celeryUtcOffset(new Date(now));
      this.offsetCheckedAt = now;
    }
    return this.offset;
  }

  /** Sends the batched events now (before worker-offline, at a stop). */
  flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [group, events] of this.buffers) {
      if (events.length === 0) continue;
      this.buffers.set(group, []);
      this.publish(`${group}.multi`, events, events.length);
    }
  }

  private buffer(group: string, event: CeleryEvent): boolean {
    let events = this.buffers.get(group);
    if (!events) {
      events = [];
      this.buffers.set(group, events);
    }
    events.push(event);
    if (events.length >= this.bufferLimit) this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), this.bufferMs);
      this.flushTimer.unref();
    }
    return true;
  }

  /**
   * Publishes one event or a batch, without waiting; counts them sent once handed to the
   * connection, or dropped. False when it was dropped at once (it could not even be encoded).
   */
  private publish(routingKey: string, body: CeleryEvent | CeleryEvent[], count: number): boolean {
    const transport = this.exchanges;
    if (!transport) {
      this.counts.dropped += count;
      return false;
    }
    let published: Promise<void>;
    try {
      published = transport.publishToExchange(EVENT_EXCHANGE.name, routingKey, encodeEvent(body));
    } catch {
      // An unserializable field, or a transport that threw against its contract.
      this.counts.dropped += count;
      return false;
    }
    published.then(
      () => (this.counts.sent += count),
      () => (this.counts.dropped += count),
    );
    return true;
  }

  /** Events sent and dropped so far. */
  get stats(): EventDispatchCounts {
    return { ...this.counts };
  }
}
