import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_BODY_DEPTH } from '../defaults';
import { MessageDecodeError, SerializationError } from '../errors';
import { parseCeleryJson, stringifyCeleryJson } from './celery-json';
import { parseCeleryTimestamp } from './celery-time';
import type { TransportMessage } from '../transport/transport';
import {
  JSON_CONTENT_TYPE,
  UTF8,
  type SignatureDict,
  type TaskEmbed,
  type TaskHeaders,
  type TaskMessage,
} from './task-message';

/**
 * Encodes a task message for the wire: headers, properties, and the JSON body. A body larger
 * than `maxBodyBytes` (what workers accept by default) is refused with a SerializationError
 * giving its size and the limit, before anything is published: a worker would dead-letter it.
 */
export function encodeTaskMessage(
  message: TaskMessage,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
): TransportMessage {
  const body = Buffer.from(
    stringifyCeleryJson([message.args, message.kwargs, message.embed]),
    'utf8',
  );
  if (body.length > maxBodyBytes) {
    throw new SerializationError(
      'args',
      `the message body would be ${body.length} bytes, over the ${maxBodyBytes} bytes workers accept (maxBodyBytes)`,
    );
  }
  return {
    headers: { ...message.headers },
    properties: {
      contentType: message.properties.contentType,
      contentEncoding: message.properties.contentEncoding,
      correlationId: message.properties.correlationId,
      replyTo: message.properties.replyTo,
      priority: message.properties.priority,
      deliveryMode: message.properties.deliveryMode,
    },
    body,
  };
}

/** Largest body (bytes) the decoder accepts and `delay()` sends by default; it lives in defaults. */
export { DEFAULT_MAX_BODY_BYTES } from '../defaults';

/** Limits the decoder enforces. */
export interface DecodeLimits {
  /** Bodies larger than this are refused. @defaultValue 16 MiB */
  maxBodyBytes?: number;
  /** Deepest JSON nesting accepted in the body. @defaultValue {@link DEFAULT_MAX_BODY_DEPTH} (64) */
  maxDepth?: number;
}

/**
 * Decodes and validates a Celery protocol v2 message. Anything that is not one (wrong content
 * type, protocol v1, missing or mistyped headers, a body that is not `[args, kwargs, embed]`)
 * is refused with a {@link MessageDecodeError} saying why.
 */
export function decodeTaskMessage(raw: TransportMessage, limits: DecodeLimits = {}): TaskMessage {
  const h = raw.headers ?? {};
  const taskId = typeof h.id === 'string' && h.id !== '' ? h.id : undefined;
  const fail = (reason: string): never => {
    throw new MessageDecodeError(reason, taskId);
  };

  const contentType = raw.properties.contentType;
  if (contentType !== JSON_CONTENT_TYPE) {
    fail(`content type '${String(contentType)}' is not supported (only ${JSON_CONTENT_TYPE})`);
  }
  const encoding = raw.properties.contentEncoding ?? UTF8;
  if (encoding.toLowerCase() !== UTF8 && encoding.toLowerCase() !== 'utf8') {
    fail(`content encoding '${encoding}' is not supported (only ${UTF8})`);
  }
  if (h.task === undefined && h.id === undefined) {
    fail('no task headers: Celery protocol v1 and other message formats are not supported');
  }
  if (typeof h.task !== 'string' || h.task === '') fail("header 'task' must be a non-empty string");
  if (!taskId) fail("header 'id' must be a non-empty string");

  const maxBody = limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (raw.body.length > maxBody)
    fail(`body of ${raw.body.length} bytes exceeds the limit of ${maxBody}`);

  const headers: TaskHeaders = {
    ...h,
    lang: optionalString(h, 'lang', fail) ?? 'py',
    task: h.task as string,
    id: taskId as string,
    shadow: optionalString(h, 'shadow', fail),
    eta: optionalTime(h, 'eta', fail),
    expires: optionalTime(h, 'expires', fail),
    group: optionalString(h, 'group', fail),
    group_index: optionalInteger(h, 'group_index', fail),
    retries: optionalInteger(h, 'retries', fail) ?? 0,
    timelimit: timelimit(h.timelimit, fail),
    root_id: optionalString(h, 'root_id', fail) ?? (taskId as string),
    parent_id: optionalString(h, 'parent_id', fail),
    argsrepr: optionalString(h, 'argsrepr', fail) ?? '',
    kwargsrepr: optionalString(h, 'kwargsrepr', fail) ?? '',
    origin: optionalString(h, 'origin', fail) ?? '',
    ignore_result: optionalBoolean(h, 'ignore_result', fail) ?? false,
  };
  if (headers.retries < 0) fail("header 'retries' must not be negative");

  let body: unknown;
  try {
    body = parseCeleryJson(raw.body.toString('utf8'));
  } catch (error) {
    fail(`body is not valid JSON (${(error as Error).message})`);
  }
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_BODY_DEPTH;
  const depth = jsonDepth(body, maxDepth);
  if (depth === undefined) fail(`body nests deeper than ${maxDepth} levels`);
  if (!Array.isArray(body) || body.length !== 3)
    fail('body must be the JSON array [args, kwargs, embed]');
  const [args, kwargs, embed] = body as unknown[];
  if (!Array.isArray(args)) fail('body[0] (args) must be an array');
  if (!isPlainObject(kwargs)) fail('body[1] (kwargs) must be an object');
  if (embed !== null && !isPlainObject(embed)) fail('body[2] (embed) must be an object or null');

  const props = raw.properties;
  return {
    headers,
    properties: {
      correlationId: props.correlationId ?? headers.id,
      contentType: JSON_CONTENT_TYPE,
      contentEncoding: UTF8,
      priority: props.priority,
      deliveryMode: props.deliveryMode,
      replyTo: props.replyTo,
    },
    args: args as unknown[],
    kwargs: kwargs as Record<string, unknown>,
    embed: readEmbed(embed as Record<string, unknown> | null),
  };
}

type Fail = (reason: string) => never;

function optionalString(h: Record<string, unknown>, key: string, fail: Fail): string | null {
  const value = h[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') fail(`header '${key}' must be a string or null`);
  return value as string;
}

function optionalInteger(h: Record<string, unknown>, key: string, fail: Fail): number | null {
  const value = h[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail(`header '${key}' must be an integer or null`);
  }
  return value as number;
}

function optionalBoolean(h: Record<string, unknown>, key: string, fail: Fail): boolean | null {
  const value = h[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'boolean') fail(`header '${key}' must be a boolean or null`);
  return value as boolean;
}

function optionalTime(h: Record<string, unknown>, key: string, fail: Fail): string | null {
  const value = optionalString(h, key, fail);
  if (value !== null && parseCeleryTimestamp(value) === undefined) {
    fail(`header '${key}' is not an ISO 8601 time: '${value}'`);
  }
  return value;
}

function timelimit(value: unknown, fail: Fail): [number | null, number | null] {
  if (value === undefined || value === null) return [null, null];
  const ok =
    Array.isArray(value) &&
    value.length === 2 &&
    value.every((v) => v === null || (typeof v === 'number' && Number.isFinite(v) && v >= 0));
  if (!ok) fail("header 'timelimit' must be [hard, soft] with numbers of seconds or null");
  return value as [number | null, number | null];
}

function readEmbed(embed: Record<string, unknown> | null): TaskEmbed {
  const list = (v: unknown): SignatureDict[] | null =>
    Array.isArray(v) ? (v as SignatureDict[]) : null;
  return {
    callbacks: list(embed?.callbacks),
    errbacks: list(embed?.errbacks),
    chain: list(embed?.chain),
    chord: isPlainObject(embed?.chord) ? (embed!.chord as SignatureDict) : null,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Depth of a parsed JSON value, or undefined once it exceeds `max`. Iterative: no stack risk. */
function jsonDepth(root: unknown, max: number): number | undefined {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > max) return undefined;
    deepest = Math.max(deepest, depth);
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return deepest;
}
