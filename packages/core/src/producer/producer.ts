import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { celeryTimestamp } from '../protocol/celery-time';
import { encodeTaskMessage } from '../protocol/message-codec';
import { reprArgs, reprKwargs } from '../protocol/python-repr';
import {
  emptyEmbed,
  JSON_CONTENT_TYPE,
  UTF8,
  type TaskEmbed,
  type TaskMessage,
} from '../protocol/task-message';
import { currentTaskContext } from '../task/task-context';
import type { TaskOptions } from '../task/task-options';
import type { QueueDeclaration, Transport } from '../transport/transport';
import type { ResultBackend } from '../backend/result-backend';
import { ConfigError } from '../errors';
import type { EventDispatcher } from '../events/event-dispatcher';
import type { SendOptions } from './send-options';

/** One task call, its arguments already in wire form. */
export interface TaskCall {
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: SendOptions;
  /** The task's declared options, when the task is registered in this app. */
  taskOptions?: Readonly<TaskOptions>;
  /** Queue when neither the call nor the task names one. */
  queue: string;
  /**
   * The task this call continues (a chain's next step, a callback, an errback), when sent by a
   * worker after the task ended rather than from inside it.
   */
  parent?: { id: string; rootId: string };
  /** Canvas links the message carries on (the rest of a chain, its own callbacks). */
  embed?: TaskEmbed;
  /** The group the task belongs to, from its signature's options. */
  group?: { id: string; index: number | null };
}

/** Builds Celery protocol v2 messages and publishes them. Internal: used by the app, below both it and the worker. */
export class Producer {
  /** `gen<pid>@<host>`, as Celery fills the `origin` header. */
  readonly origin = `gen${process.pid}@${hostname()}`;
  /** A stable id of this producer, sent as `reply_to` the way Celery sends its app's oid. */
  private readonly replyTo = randomUUID();
  private readonly declared = new Map<string, Promise<void>>();
  private sentEventsOpen?: Promise<void>;

  constructor(
    private readonly transport: Transport,
    private readonly queueDeclarations: ReadonlyMap<string, QueueDeclaration>,
    private readonly backend?: ResultBackend,
    private readonly maxBodyBytes?: number,
    /** Sends `task-sent` for every task, when the app asks for it. */
    private readonly sentEvents?: EventDispatcher,
  ) {}

  /** Publishes the call; resolves with its task id once the broker has confirmed it. */
  async send(call: TaskCall): Promise<string> {
    const { message, deliverAt } = this.build(call);
    const encoded = encodeTaskMessage(message, this.maxBodyBytes);
    await this.ensureQueue(call.options.queue ?? call.queue);
    const published = this.transport.publish(encoded, {
      queue: call.options.queue ?? call.queue,
      deliverAt,
    });
    // Watched once the publish is handed over, so that the task's own socket write goes first;
    // the result cannot be missed, since a watch reads the key once it is subscribed.
    if (!message.headers.ignore_result) this.backend?.watch?.(message.headers.id);
    await published;
    if (this.sentEvents) await this.sendSentEvent(message, call.options.queue ?? call.queue);
    return message.headers.id;
  }

  /** Celery's `task-sent`, after the broker confirmed the task; never fails the send. */
  private async sendSentEvent(message: TaskMessage, queue: string): Promise<void> {
    const events = this.sentEvents!;
    if (!this.sentEventsOpen) {
      const opening = events.open();
      this.sentEventsOpen = opening;
      // Tried again on the next send if the broker could not be reached now.
      opening.catch(() => (this.sentEventsOpen = undefined));
    }
    await this.sentEventsOpen.catch(() => undefined);
    const h = message.headers;
    events.send('task-sent', {
      uuid: h.id,
      root_id: h.root_id,
      parent_id: h.parent_id,
      name: h.task,
      args: h.argsrepr,
      kwargs: h.kwargsrepr,
      retries: h.retries,
      eta: h.eta,
      expires: h.expires,
      queue,
      exchange: queue,
      routing_key: queue,
    });
  }

  /** Declares a queue once per producer; a failed declaration is tried again next time. */
  ensureQueue(name: string): Promise<void> {
    let pending = this.declared.get(name);
    if (!pending) {
      pending = this.transport.declareQueue(this.queueDeclarations.get(name) ?? { name });
      pending.catch(() => this.declared.delete(name));
      this.declared.set(name, pending);
    }
    return pending;
  }

  build(call: TaskCall): { message: TaskMessage; deliverAt?: number } {
    const { options, taskOptions = {} } = call;
    checkSendOptions(options);
    const id = options.taskId ?? randomUUID();
    const parent = call.parent ?? currentTaskContext();
    const now = Date.now();
    const etaTime =
      options.eta?.getTime() ??
      (options.countdownMs !== undefined ? now + options.countdownMs : undefined);
    const expiresTime =
      options.expires instanceof Date
        ? options.expires.getTime()
        : options.expires !== undefined
          ? now + options.expires
          : undefined;
    const hard = options.timeLimitMs ?? taskOptions.timeLimitMs;
    const soft = options.softTimeLimitMs ?? taskOptions.softTimeLimitMs;
    const priority = options.priority ?? taskOptions.priority;
    const message: TaskMessage = {
      headers: {
        lang: 'js',
        task: call.name,
        id,
        shadow: options.shadow ?? null,
        eta: etaTime !== undefined ? celeryTimestamp(new Date(etaTime)) : null,
        expires: expiresTime !== undefined ? celeryTimestamp(new Date(expiresTime)) : null,
        group: call.group?.id ?? null,
        group_index: call.group?.index ?? null,
        retries: 0,
        timelimit: [
          hard !== undefined ? hard / 1000 : null,
          soft !== undefined ? soft / 1000 : null,
        ],
        root_id: parent?.rootId ?? id,
        parent_id: parent?.id ?? null,
        argsrepr: reprArgs(call.args),
        kwargsrepr: reprKwargs(call.kwargs),
        origin: this.origin,
        ignore_result: options.ignoreResult ?? taskOptions.ignoreResult ?? false,
      },
      properties: {
        correlationId: id,
        contentType: JSON_CONTENT_TYPE,
        contentEncoding: UTF8,
        deliveryMode: 2,
        priority: priority ?? 0,
        replyTo: this.replyTo,
      },
      args: call.args,
      kwargs: call.kwargs,
      embed: call.embed ?? emptyEmbed(),
    };
    return { message, deliverAt: etaTime !== undefined && etaTime > now ? etaTime : undefined };
  }
}

/** Refuses call options that would make an invalid message, before anything is published. */
function checkSendOptions(options: SendOptions): void {
  const fail = (what: string): never => {
    throw new ConfigError(`invalid call option: ${what}`);
  };
  const isValidDate = (d: unknown): boolean => d instanceof Date && !Number.isNaN(d.getTime());
  const isNonNegative = (n: unknown): boolean =>
    typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (options.eta !== undefined && !isValidDate(options.eta)) fail('eta must be a valid Date');
  if (options.countdownMs !== undefined && !isNonNegative(options.countdownMs)) {
    fail(`countdownMs must be a non-negative number, got ${options.countdownMs}`);
  }
  if (options.expires !== undefined) {
    const ok =
      options.expires instanceof Date
        ? isValidDate(options.expires)
        : isNonNegative(options.expires);
    if (!ok) fail('expires must be a valid Date or a non-negative number of ms');
  }
  for (const key of ['timeLimitMs', 'softTimeLimitMs'] as const) {
    if (options[key] !== undefined && !isNonNegative(options[key])) {
      fail(`${key} must be a non-negative number, got ${options[key]}`);
    }
  }
  const { priority } = options;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 255)) {
    fail(`priority must be an integer from 0 to 255, got ${priority}`);
  }
  if (
    options.taskId !== undefined &&
    (typeof options.taskId !== 'string' || options.taskId === '')
  ) {
    fail('taskId must be a non-empty string');
  }
}
