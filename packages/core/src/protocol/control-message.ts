import type { TransportMessage } from '../transport/transport';
import { JSON_CONTENT_TYPE, UTF8 } from './task-message';

/**
 * Remote control, as Celery's workers speak it: JSON commands on the `celery.pidbox` fanout
 * exchange. Conveyor uses `revoke`, so `app.control.revoke(id)` from Python reaches Conveyor
 * workers and `app.revoke(id)` from Conveyor reaches Python workers.
 */
export const CONTROL_EXCHANGE = 'celery.pidbox';

/** A `revoke` command. */
export interface RevokeCommand {
  taskIds: string[];
  terminate: boolean;
  signal: string;
}

/** Encodes a `revoke` command as Celery's mailbox sends it. */
export function encodeRevoke(command: RevokeCommand): TransportMessage {
  const body = {
    method: 'revoke',
    arguments: {
      task_id: command.taskIds.length === 1 ? command.taskIds[0] : command.taskIds,
      terminate: command.terminate,
      signal: command.signal,
    },
    destination: null,
    pattern: null,
    matcher: null,
  };
  return {
    headers: { clock: 1, expires: null },
    // kombu's mailbox publishes transient messages on a non-durable fanout exchange.
    properties: { contentType: JSON_CONTENT_TYPE, contentEncoding: UTF8, deliveryMode: 1 },
    body: Buffer.from(JSON.stringify(body)),
  };
}

/** Reads a `revoke` command; anything else (other commands, garbage) gives undefined. */
export function decodeRevoke(message: TransportMessage): RevokeCommand | undefined {
  let body: unknown;
  try {
    body = JSON.parse(message.body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const { method, arguments: args } = body as {
    method?: unknown;
    arguments?: Record<string, unknown>;
  };
  if (method !== 'revoke' || typeof args !== 'object' || args === null) return undefined;
  const raw = args.task_id;
  const taskIds = (Array.isArray(raw) ? raw : [raw]).filter(
    (id): id is string => typeof id === 'string',
  );
  if (taskIds.length === 0) return undefined;
  return {
    taskIds,
    terminate: args.terminate === true,
    signal: typeof args.signal === 'string' ? args.signal : 'SIGTERM',
  };
}
