import type { ExchangeDeclaration, TransportMessage } from '../transport/transport';
import { JSON_CONTENT_TYPE, UTF8 } from '../protocol/task-message';

/**
 * Celery's event exchange. kombu declares `celeryev` as a durable topic exchange; a different
 * declaration is refused by RabbitMQ, so ours must be the same.
 */
export const EVENT_EXCHANGE: ExchangeDeclaration = {
  name: 'celeryev',
  type: 'topic',
  durable: true,
};

/** The event types Celery's workers and producers send. */
export type CeleryEventType =
  | 'worker-online'
  | 'worker-heartbeat'
  | 'worker-offline'
  | 'task-sent'
  | 'task-received'
  | 'task-started'
  | 'task-succeeded'
  | 'task-failed'
  | 'task-retried'
  | 'task-revoked'
  | 'task-rejected';

/**
 * One Celery event: a flat JSON object. Every event has these fields; the rest depend on the
 * type (task events carry `uuid`, worker events `freq`, `active`, `processed`, `loadavg`...).
 */
export interface CeleryEvent {
  /** `worker-heartbeat`, `task-succeeded`, ... (custom types are allowed). */
  type: CeleryEventType | (string & {});
  /** The node that sent it (`celery@host`, `conveyor-123@host`). */
  hostname: string;
  /** Unix time in seconds (float), on the sender's clock. */
  timestamp: number;
  /**
   * The sender's offset from UTC in hours, with Celery's sign: west of Greenwich is positive
   * (Python's `time.timezone // 3600`), so UTC+2 is -2.
   */
  utcoffset: number;
  /** The sender's process id. */
  pid: number;
  /** The sender's Lamport clock. */
  clock: number;
  /** Unix time (seconds) this process received it; set by the receiver. */
  local_received?: number;
  [field: string]: unknown;
}

/** The routing key of an event type, as Celery publishes it: `task-succeeded` → `task.succeeded`. */
export function eventRoutingKey(type: string): string {
  return type.replace(/-/g, '.');
}

/** The group of an event type: `task` for `task-sent`, `worker` for `worker-online`. */
export function eventGroup(type: string): string {
  const dash = type.indexOf('-');
  return dash < 0 ? type : type.slice(0, dash);
}

/**
 * This process's offset from UTC in whole hours with Celery's sign (hours west of UTC, floored,
 * as Python's `time.timezone // 3600`): UTC+2 gives -2, UTC-5 gives 5, UTC+5:30 gives -6.
 */
export function celeryUtcOffset(at: Date = new Date()): number {
  return Math.floor(at.getTimezoneOffset() / 60);
}

/**
 * A timestamp from a sender at `utcoffset`, moved to this process's offset, as Celery's
 * `adjust_timestamp` does (the receiving side of `utcoffset`).
 */
export function adjustTimestamp(
  timestamp: number,
  utcoffset: number,
  at: Date = new Date(),
): number {
  return timestamp - (utcoffset - celeryUtcOffset(at)) * 3600;
}

/**
 * The message of an event, or of a batch of events (a JSON list, as Celery's workers send task
 * events): JSON, transient, with the `hostname` header Celery adds.
 */
export function encodeEvent(event: CeleryEvent | CeleryEvent[]): TransportMessage {
  const first = Array.isArray(event) ? event[0] : event;
  return {
    headers: { hostname: first?.hostname ?? '' },
    properties: { contentType: JSON_CONTENT_TYPE, contentEncoding: UTF8, deliveryMode: 1 },
    body: Buffer.from(JSON.stringify(event)),
  };
}

/**
 * The events in a message. Celery 4+ workers send a batch of task events as one list (routing
 * key `task.multi`); a single event is an object. Anything that is not JSON objects with a
 * string `type` gives an empty list.
 */
export function decodeEvents(message: TransportMessage): CeleryEvent[] {
  let body: unknown;
  try {
    body = JSON.parse(message.body.toString('utf8'));
  } catch {
    return [];
  }
  const items = Array.isArray(body) ? body : [body];
  return items.filter(
    (item): item is CeleryEvent =>
      typeof item === 'object' &&
      item !== null &&
      !Array.isArray(item) &&
      typeof (item as { type?: unknown }).type === 'string',
  );
}
