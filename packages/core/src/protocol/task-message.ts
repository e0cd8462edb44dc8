/**
 * Celery message protocol v2, as published by Celery 5: task metadata travels in AMQP headers,
 * the body is the JSON array `[args, kwargs, embed]`.
 */

/** The v2 headers that Celery sets on every task message. */
export interface TaskHeaders {
  /** Language of the producer (`py` for Celery, `js` for Conveyor). Informational. */
  lang: string;
  /** Registered task name, e.g. `tasks.add`. */
  task: string;
  /** Task id (a UUID); also the message's correlation id. */
  id: string;
  /** Name shown in logs instead of `task`, or null. */
  shadow: string | null;
  /** ISO 8601 time before which the task must not run, or null. */
  eta: string | null;
  /** ISO 8601 time after which the task must not run, or null. */
  expires: string | null;
  /** Id of the group this task belongs to, or null. */
  group: string | null;
  /** Position in that group, or null. */
  group_index: number | null;
  /** How many times this task has been retried. */
  retries: number;
  /** `[hard, soft]` time limits in seconds; each may be null. */
  timelimit: [number | null, number | null];
  /** Id of the first task in the workflow. */
  root_id: string;
  /** Id of the task that sent this one, or null. */
  parent_id: string | null;
  /** Python-style repr of the positional arguments, for logs and monitoring. */
  argsrepr: string;
  /** Python-style repr of the keyword arguments. */
  kwargsrepr: string;
  /** `<name><pid>@<hostname>` of the producer. */
  origin: string;
  /** Whether the worker should store no result. */
  ignore_result: boolean;
  /** Further headers (Celery adds some for canvas and stamping); kept as they came. */
  [extra: string]: unknown;
}

/** A Celery signature as it travels inside messages (callbacks, chains, chords). */
export interface SignatureDict {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  [extra: string]: unknown;
}

/** Third element of the body: canvas links. */
export interface TaskEmbed {
  callbacks: SignatureDict[] | null;
  errbacks: SignatureDict[] | null;
  chain: SignatureDict[] | null;
  chord: SignatureDict | null;
}

/** The AMQP basic properties of a task message. */
export interface TaskProperties {
  correlationId: string;
  contentType: string;
  contentEncoding: string;
  /** 0-255; honoured only by priority queues. */
  priority?: number;
  /** 2 = persistent. */
  deliveryMode?: number;
  /** Reply queue of the producer (Celery sets the producer's oid), optional. */
  replyTo?: string;
}

/** A decoded task message. */
export interface TaskMessage {
  headers: TaskHeaders;
  properties: TaskProperties;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: TaskEmbed;
}

export const JSON_CONTENT_TYPE = 'application/json';
export const UTF8 = 'utf-8';

/** An embed with no canvas links. */
export function emptyEmbed(): TaskEmbed {
  return { callbacks: null, errbacks: null, chain: null, chord: null };
}
