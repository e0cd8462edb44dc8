import type { TaskRequestInfo } from '../control/inspect';
import type { TaskMessage } from '../protocol/task-message';

/** What `inspect active/reserved/scheduled` tells of a task message a worker holds. */
export interface HeldMessage {
  readonly message: TaskMessage;
  readonly queue: string;
  readonly redelivered: boolean;
  /** Epoch ms it started, if it did. */
  readonly startedAt?: number;
  /** Whether its message was acked already (early acks). */
  readonly acknowledged: boolean;
}

/** A held task as Celery's `Request.info()` describes it, so `celery inspect` shows it alike. */
export function requestInfo(held: HeldMessage, hostname: string): TaskRequestInfo {
  const h = held.message.headers;
  return {
    id: h.id,
    name: h.task,
    args: held.message.args,
    kwargs: held.message.kwargs,
    type: h.task,
    hostname,
    time_start: held.startedAt === undefined ? null : held.startedAt / 1000,
    acknowledged: held.acknowledged,
    delivery_info: {
      exchange: held.queue,
      routing_key: held.queue,
      priority: held.message.properties.priority ?? null,
      redelivered: held.redelivered,
    },
    worker_pid: held.startedAt === undefined ? null : process.pid,
  };
}
