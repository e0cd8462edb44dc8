import {
  BROKER_DEAD_LETTERING_HEADERS,
  BROKER_DELIVERY_COUNT_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTERED_AT_HEADER,
  DELIVERY_COUNT_HEADER,
  RATE_SLOT_HEADER,
  type TransportMessage,
} from '../transport/transport';
import { parseCeleryTimestamp } from '../protocol/celery-time';

/** One message of a dead-letter queue, as {@link DeadLetters.list} describes it. */
export interface DeadLetter {
  /** The task id (Celery's `id` header, else the correlation id); undefined for a message without one. */
  readonly id: string | undefined;
  /** The task name (`task` header), undefined when the message has none. */
  readonly task: string | undefined;
  /** Why it was dead-lettered: Conveyor's reason header, or the broker's `x-death` reason. */
  readonly reason: string;
  /** Who moved it: a Conveyor worker (reason header), the broker (`x-death`), or unknown. */
  readonly deadLetteredBy: 'worker' | 'broker' | 'unknown';
  /** When it was dead-lettered, when the message says so. */
  readonly deadLetteredAt: Date | undefined;
  /**
   * How many deliveries of it ended without completing, when a Conveyor worker counted them
   * (it dead-lettered the message past `maxDeliveries`). RabbitMQ's own `x-delivery-count` is
   * not used: on a quorum dead-letter queue it counts deliveries from that queue.
   */
  readonly redeliveries: number | undefined;
  /** The message itself, headers and body as stored. */
  readonly message: TransportMessage;
}

/**
 * Headers that describe a past life: as a dead letter, past deliveries, a rate-limit slot
 * reserved long ago. A replayed message leaves them behind: it starts counting again, and a
 * worker must not take an old count or slot for a new one.
 */
const PAST_LIFE_HEADERS = [
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTERED_AT_HEADER,
  DELIVERY_COUNT_HEADER,
  BROKER_DELIVERY_COUNT_HEADER,
  RATE_SLOT_HEADER,
  ...BROKER_DEAD_LETTERING_HEADERS,
];

/** The most recent entry of RabbitMQ's `x-death` header, as far as it is readable. */
interface DeathEntry {
  reason?: unknown;
  queue?: unknown;
  time?: unknown;
  count?: unknown;
}

/** Describes a message of a dead-letter queue. */
export function describeDeadLetter(message: TransportMessage): DeadLetter {
  const headers = message.headers;
  const ours = headers[DEAD_LETTER_REASON_HEADER];
  const death = lastDeath(headers['x-death']);
  const redeliveries = countOf(headers[DELIVERY_COUNT_HEADER]);
  const base = {
    id: taskId(message),
    task: typeof headers.task === 'string' ? headers.task : undefined,
    redeliveries,
    message,
  };
  if (typeof ours === 'string') {
    const at = countOf(headers[DEAD_LETTERED_AT_HEADER]);
    return {
      ...base,
      reason: ours,
      deadLetteredBy: 'worker',
      deadLetteredAt: at === undefined ? undefined : new Date(at),
    };
  }
  if (death) {
    const queue = typeof death.queue === 'string' ? ` from queue '${death.queue}'` : '';
    return {
      ...base,
      reason: `dead-lettered by the broker${queue}: ${String(death.reason ?? 'unknown reason')}`,
      deadLetteredBy: 'broker',
      deadLetteredAt: timestampOf(death.time),
    };
  }
  return {
    ...base,
    reason: 'no reason recorded',
    deadLetteredBy: 'unknown',
    deadLetteredAt: undefined,
  };
}

/** The task id of a message: Celery's `id` header, else its correlation id. */
export function taskId(message: TransportMessage): string | undefined {
  const id = message.headers.id;
  if (typeof id === 'string' && id.length > 0) return id;
  return message.properties.correlationId;
}

/**
 * The message a replay publishes: the dead letter without the headers of its past life, its
 * `retries` back to 0 (a replay is a fresh start: the task's retry policy applies in full), under
 * `newId` when given (the `id` header, the correlation id, and the root id when the task was its
 * own root). `expires` is kept: a deadline is part of what the producer asked for (see
 * {@link hasExpired}).
 */
export function replayMessage(message: TransportMessage, newId?: string): TransportMessage {
  const headers: Record<string, unknown> = { ...message.headers };
  for (const name of PAST_LIFE_HEADERS) delete headers[name];
  if (typeof headers.retries === 'number') headers.retries = 0;
  const properties = { ...message.properties };
  if (newId !== undefined) {
    const oldId = taskId(message);
    headers.id = newId;
    properties.correlationId = newId;
    if (oldId !== undefined && headers.root_id === oldId) headers.root_id = newId;
  }
  return { headers, properties, body: message.body };
}

/** True when the message's `expires` has passed at `now`: a worker revokes it on receipt. */
export function hasExpired(message: TransportMessage, now = Date.now()): boolean {
  const expires = message.headers.expires;
  if (typeof expires !== 'string') return false;
  const at = parseCeleryTimestamp(expires);
  return at !== undefined && at.getTime() <= now;
}

function lastDeath(value: unknown): DeathEntry | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const first: unknown = value[0];
  return first !== null && typeof first === 'object' ? (first as DeathEntry) : undefined;
}

function countOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/** An AMQP timestamp (seconds) as amqplib decodes it: `{ '!': 'timestamp', value }` or a number. */
function timestampOf(value: unknown): Date | undefined {
  const seconds =
    value !== null && typeof value === 'object' && 'value' in value
      ? countOf((value as { value: unknown }).value)
      : countOf(value);
  return seconds === undefined ? undefined : new Date(seconds * 1000);
}
