import { LamportClock } from '../protocol/lamport-clock';
import { hasExchanges, requireExchanges } from '../transport/exchange-capability';
import type { Transport } from '../transport/transport';
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
 * never throws, so events cannot slow or fail a task. An event that cannot go now (no
 * connection, the broker pushing back) is dropped and counted, never buffered: events describe
 * the present, and a backlog would only grow while the broker is in trouble.
 */
export class EventDispatcher {
  /** The groups sent now; `enable_events`/`disable_events` add and remove `task`. */
  readonly groups: Set<string> | undefined;
  readonly hostname: string;
  readonly clock: LamportClock;
  private readonly counts: EventDispatchCounts = { sent: 0, dropped: 0 };
  private ready = false;

  constructor(
    private readonly transport: Transport,
    options: EventDispatcherOptions,
  ) {
    this.hostname = options.hostname;
    this.groups = options.groups ? new Set(options.groups) : undefined;
    this.clock = options.clock ?? new LamportClock();
  }

  /**
   * Declares the event exchange. Rejects with a `ConfigError` when the transport cannot carry
   * events, or a `ConnectionError` when the broker is unreachable; until it resolves, events are
   * dropped.
   */
  async open(): Promise<void> {
    await requireExchanges(this.transport, 'Celery events').declareExchange(EVENT_EXCHANGE);
    this.ready = true;
  }

  /** Whether events of `group` are sent. */
  sends(group: string): boolean {
    return this.groups === undefined || this.groups.has(group);
  }

  /**
   * Sends one event of `type` with `fields` (and Celery's `hostname`, `utcoffset`, `pid`,
   * `clock`, `timestamp`). True if it was handed to the connection, false if it was dropped or
   * its group is off.
   */
  send(type: string, fields: Record<string, unknown> = {}): boolean {
    if (!this.sends(eventGroup(type))) return false;
    if (!this.ready || !hasExchanges(this.transport)) {
      this.counts.dropped += 1;
      return false;
    }
    let sent: boolean;
    try {
      const event: CeleryEvent = {
        hostname: this.hostname,
        utcoffset: celeryUtcOffset(),
        pid: process.pid,
        clock: this.clock.forward(),
        timestamp: Date.now() / 1000,
        ...fields,
        type,
      };
      sent = this.transport.publishTransient(
        EVENT_EXCHANGE.name,
        eventRoutingKey(type),
        encodeEvent(event),
      );
    } catch {
      // An unserializable field, or a transport that threw against its contract.
      sent = false;
    }
    if (sent) this.counts.sent += 1;
    else this.counts.dropped += 1;
    return sent;
  }

  /** Events sent and dropped so far. */
  get stats(): EventDispatchCounts {
    return { ...this.counts };
  }
}
