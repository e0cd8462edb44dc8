import type { ExchangeDeclaration, TransportMessage } from '../transport/transport';
import { JSON_CONTENT_TYPE, UTF8 } from './task-message';

/**
 * Remote control, as Celery's workers speak it (kombu's pidbox mailbox): JSON commands on the
 * `celery.pidbox` fanout exchange, each worker listening through a queue of its own; a command
 * that wants replies names a `reply_to` exchange and routing key and a `ticket`, and each worker
 * the command is for answers `{hostname: reply}` there with that ticket.
 */
export const CONTROL_EXCHANGE = 'celery.pidbox';

/** kombu declares the mailbox exchange as a non-durable fanout exchange. */
export const CONTROL_EXCHANGE_DECLARATION: ExchangeDeclaration = {
  name: CONTROL_EXCHANGE,
  type: 'fanout',
  durable: false,
};

/** Where Celery's mailbox clients collect replies: a non-durable direct exchange. */
export const REPLY_EXCHANGE: ExchangeDeclaration = {
  name: 'reply.celery.pidbox',
  type: 'direct',
  durable: false,
};

/** Who a control command is for, as kombu's pidbox nodes decide. */
export interface ControlAddress {
  /** Hostnames of the workers it is for; null or empty: every worker. */
  destination?: string[] | null;
  /** A pattern the worker's hostname must match instead, per `matcher`. */
  pattern?: string | null;
  /** How `pattern` matches: `glob` (kombu's default) or `pcre`. */
  matcher?: string | null;
}

/** One control command (`ping`, `stats`, `rate_limit`...), with its keyword arguments. */
export interface ControlRequest extends ControlAddress {
  method: string;
  arguments: Record<string, unknown>;
  /** Identifies the replies to this request; set when replies are wanted. */
  ticket?: string | null;
  /** Where replies go; set when replies are wanted. */
  replyTo?: { exchange: string; routingKey: string } | null;
}

/** The replies to one request carried by one message: `{hostname: reply}`. */
export interface ControlReply {
  ticket: string | undefined;
  replies: Record<string, unknown>;
}

/** A `revoke` command. */
export interface RevokeCommand extends ControlAddress {
  /** The task ids to revoke. */
  taskIds: string[];
  /** Whether running tasks with these ids are stopped too. */
  terminate: boolean;
  /** The signal Celery's pool would send to stop them (informational here). */
  signal: string;
}

/**
 * Whether a control command is for the worker `hostname`, as kombu's pidbox decides: no
 * destination means every worker; otherwise the hostname is in `destination` or matches
 * `pattern`.
 */
export function isAddressedTo(command: ControlAddress, hostname: string): boolean {
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

/** Clock and expiry headers of a request; kombu's clients send `expires` 0 for none. */
export interface ControlRequestHeaders {
  /** The sender's Lamport clock. @defaultValue 1 */
  clock?: number;
  /** Unix seconds after which replies are ignored; 0 for none. */
  expires?: number;
}

/** Encodes a command as kombu's mailbox publishes it: transient JSON on the fanout exchange. */
export function encodeControlRequest(
  request: ControlRequest,
  headers: ControlRequestHeaders = {},
): TransportMessage {
  const body: Record<string, unknown> = {
    method: request.method,
    arguments: request.arguments,
    destination: request.destination && request.destination.length > 0 ? request.destination : null,
    pattern: request.pattern ?? null,
    matcher: request.matcher ?? null,
  };
  if (request.ticket && request.replyTo) {
    body.ticket = request.ticket;
    body.reply_to = { exchange: request.replyTo.exchange, routing_key: request.replyTo.routingKey };
  }
  return {
    headers: { clock: headers.clock ?? 1, expires: headers.expires ?? 0 },
    properties: { contentType: JSON_CONTENT_TYPE, contentEncoding: UTF8, deliveryMode: 1 },
    body: Buffer.from(JSON.stringify(body)),
  };
}

/** Reads a command; anything that is not one (garbage, a reply) gives undefined. */
export function decodeControlRequest(message: TransportMessage): ControlRequest | undefined {
  const body = parseObject(message.body);
  if (!body || typeof body.method !== 'string' || body.method === '') return undefined;
  const args = body.arguments;
  const { destination, pattern, matcher, ticket } = body;
  const replyTo = body.reply_to as Record<string, unknown> | null | undefined;
  return {
    method: body.method,
    arguments:
      typeof args === 'object' && args !== null && !Array.isArray(args)
        ? (args as Record<string, unknown>)
        : {},
    destination: Array.isArray(destination)
      ? destination.filter((d): d is string => typeof d === 'string')
      : null,
    pattern: typeof pattern === 'string' ? pattern : null,
    matcher: typeof matcher === 'string' ? matcher : null,
    ticket: typeof ticket === 'string' ? ticket : null,
    replyTo:
      typeof replyTo === 'object' &&
      replyTo !== null &&
      typeof replyTo.exchange === 'string' &&
      typeof replyTo.routing_key === 'string'
        ? { exchange: replyTo.exchange, routingKey: replyTo.routing_key }
        : null,
  };
}

/** Encodes one worker's reply as kombu's `Node.reply` publishes it: `{hostname: reply}`. */
export function encodeControlReply(
  hostname: string,
  reply: unknown,
  ticket: string,
  clock: number,
): TransportMessage {
  return {
    headers: { ticket, clock },
    properties: { contentType: JSON_CONTENT_TYPE, contentEncoding: UTF8, deliveryMode: 1 },
    body: Buffer.from(JSON.stringify({ [hostname]: reply })),
  };
}

/** Reads a reply; undefined when the body is not a JSON object. */
export function decodeControlReply(message: TransportMessage): ControlReply | undefined {
  const replies = parseObject(message.body);
  if (!replies) return undefined;
  const ticket = message.headers.ticket;
  return { ticket: typeof ticket === 'string' ? ticket : undefined, replies };
}

/** Encodes a `revoke` command as Celery's mailbox sends it. */
export function encodeRevoke(command: RevokeCommand): TransportMessage {
  return encodeControlRequest({
    method: 'revoke',
    arguments: {
      task_id: command.taskIds.length === 1 ? command.taskIds[0] : command.taskIds,
      terminate: command.terminate,
      signal: command.signal,
    },
    destination: command.destination,
    pattern: command.pattern,
    matcher: command.matcher,
  });
}

/** Reads a `revoke` command; anything else (other commands, garbage) gives undefined. */
export function decodeRevoke(message: TransportMessage): RevokeCommand | undefined {
  const request = decodeControlRequest(message);
  return request?.method === 'revoke' ? revokeOf(request) : undefined;
}

/** The revoke command a `revoke` (or `terminate`) request carries; undefined without task ids. */
export function revokeOf(request: ControlRequest): RevokeCommand | undefined {
  const raw = request.arguments.task_id;
  const taskIds = (Array.isArray(raw) ? raw : [raw]).filter(
    (id): id is string => typeof id === 'string',
  );
  if (taskIds.length === 0) return undefined;
  const { signal } = request.arguments;
  return {
    taskIds,
    terminate: request.method === 'terminate' || request.arguments.terminate === true,
    signal: typeof signal === 'string' ? signal : 'SIGTERM',
    destination: request.destination ?? null,
    pattern: request.pattern ?? null,
    matcher: request.matcher ?? null,
  };
}

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
