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
  /** The task ids to revoke. */
  taskIds: string[];
  /** Whether running tasks with these ids are stopped too. */
  terminate: boolean;
  /** The signal Celery's pool would send to stop them (informational here). */
  signal: string;
  /** Hostnames of the workers it is for; null or empty: every worker. */
  destination?: string[] | null;
  /** A pattern the worker's hostname must match instead, per `matcher`. */
  pattern?: string | null;
  /** How `pattern` matches: `glob` (kombu's default) or `pcre`. */
  matcher?: string | null;
}

/**
 * Whether a control command is for the worker `hostname`, as kombu's pidbox decides: no
 * destination means every worker; otherwise the hostname is in `destination` or matches
 * `pattern`.
 */
export function isAddressedTo(command: RevokeCommand, hostname: string): boolean {
  const { destination, pattern, matcher } = command;
  if ((!destination || destination.length === 0) && !pattern) return true;
  if (destination?.includes(hostname)) return true;
  if (!pattern) return false;
  try {
    return matcher === 'pcre'
      ? new RegExp(`^(?:${pattern})`).test(hostname)
      : globToRegExp(pattern).test(hostname);
  } catch {
    // A pattern this side cannot read addresses nobody here.
    return false;
  }
}

/** fnmatch's glob (`*`, `?`, `[...]`) as an anchored regular expression. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i += 1) {
    const c = glob[i]!;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        source += '\\[';
        continue;
      }
      let set = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
      if (set.startsWith('!')) set = `^${set.slice(1)}`;
      source += `[${set}]`;
      i = end;
    } else source += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
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
    destination: command.destination && command.destination.length > 0 ? command.destination : null,
    pattern: command.pattern ?? null,
    matcher: command.matcher ?? null,
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
  const { destination, pattern, matcher } = body as Record<string, unknown>;
  return {
    taskIds,
    terminate: args.terminate === true,
    signal: typeof args.signal === 'string' ? args.signal : 'SIGTERM',
    destination: Array.isArray(destination)
      ? destination.filter((d): d is string => typeof d === 'string')
      : null,
    pattern: typeof pattern === 'string' ? pattern : null,
    matcher: typeof matcher === 'string' ? matcher : null,
  };
}
