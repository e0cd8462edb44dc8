import { randomUUID } from 'node:crypto';
import { DEFAULT_CONTROL_TIMEOUT_MS, DEFAULT_POOL_RESIZE_STEP } from '../defaults';
import { ConfigError } from '../errors';
import {
  CONTROL_EXCHANGE,
  REPLY_EXCHANGE,
  decodeControlReply,
  encodeControlRequest,
  type ControlAddress,
} from '../protocol/control-message';
import { LamportClock } from '../protocol/lamport-clock';
import { requireCapability } from '../capability/capability';
import type { Consumer, Transport } from '../transport/transport';
import type {
  BroadcastOptions,
  ControlAnswer,
  ControlOptions,
  NodeReplies,
} from './control-options';
import { Inspect, type InspectOptions } from './inspect';

/** Celery's `control_queue_ttl` and `control_queue_expires`, for the reply queue. */
const REPLY_QUEUE_TTL_MS = 300_000;
const REPLY_QUEUE_EXPIRES_MS = 10_000;

/**
 * Remote control of workers, Conveyor's and Python Celery's alike, as Celery's
 * `app.control`: commands go out on `celery.pidbox`; replies come back to a reply queue of this
 * client's own on `reply.celery.pidbox`, declared as kombu declares it
 * (`<id>.reply.celery.pidbox`, deleted with its consumer, 10 s expiry).
 */
export class Control {
  private readonly clock = new LamportClock();
  private readonly oid = randomUUID();
  private readonly collectors = new Map<string, (host: string, reply: unknown) => void>();
  /** Ends each wait for replies now, with what it has: {@link close} calls them. */
  private readonly waits = new Set<() => void>();
  private closed = false;
  private replies?: Promise<Consumer>;

  constructor(private readonly transport: Transport) {}

  /** The routing key replies to this client carry (its reply queue's binding). */
  get replyKey(): string {
    return this.oid;
  }

  /** Inspection commands (`ping`, `stats`, `active`...), answered by each worker addressed. */
  inspect(options: InspectOptions = {}): Inspect {
    return new Inspect(this, options);
  }

  /**
   * Sends a command to the workers addressed. With `reply: true`, resolves with the replies
   * that arrived within `timeoutMs` (or once `limit` did), one `{hostname: reply}` per worker.
   */
  async broadcast<T = unknown>(
    command: string,
    options: BroadcastOptions = {},
  ): Promise<NodeReplies<T>> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
    if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
      throw new ConfigError(`control timeoutMs must be a finite number from 0, got ${timeoutMs}`);
    }
    const address: ControlAddress = {
      destination: options.destination,
      pattern: options.pattern,
      matcher: options.pattern ? (options.matcher ?? 'glob') : null,
    };
    if (!options.reply) {
      await this.transport.broadcast(
        CONTROL_EXCHANGE,
        encodeControlRequest(
          { method: command, arguments: options.arguments ?? {}, ...address },
          { clock: this.clock.forward() },
        ),
      );
      return [];
    }
    if (this.closed) return [];
    await this.listenForReplies();
    // Closed while the reply queue was being set up: nothing will be collected.
    if (this.closed) return [];
    const ticket = randomUUID();
    const limit =
      options.limit ?? (options.destination?.length ? options.destination.length : undefined);
    const replies: NodeReplies<T> = [];
    let endWait = (): void => undefined;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      endWait = () => {
        clearTimeout(timer);
        resolve();
      };
      this.collectors.set(ticket, (host, reply) => {
        replies.push({ [host]: reply as T });
        if (limit !== undefined && replies.length >= limit) endWait();
      });
    });
    this.waits.add(endWait);
    try {
      await this.transport.broadcast(
        CONTROL_EXCHANGE,
        encodeControlRequest(
          {
            method: command,
            arguments: options.arguments ?? {},
            ...address,
            ticket,
            replyTo: { exchange: REPLY_EXCHANGE.name, routingKey: this.oid },
          },
          { clock: this.clock.forward(), expires: Date.now() / 1000 + timeoutMs / 1000 },
        ),
      );
      await done;
    } finally {
      this.collectors.delete(ticket);
      this.waits.delete(endWait);
    }
    return replies;
  }

  /** Pings workers: `[{ 'celery@host': { ok: 'pong' } }, ...]`. */
  ping(options: ControlOptions = {}): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('ping', { ...options, reply: true });
  }

  /**
   * Revokes tasks on the workers addressed (only the broadcast: {@link Conveyor.revoke} also
   * stores REVOKED).
   */
  revoke(
    taskIds: string | string[],
    options: ControlOptions & { terminate?: boolean; signal?: string; reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('revoke', {
      ...options,
      arguments: {
        task_id: taskIds,
        terminate: options.terminate ?? false,
        signal: options.signal ?? 'SIGTERM',
      },
    });
  }

  /** Sets a task's rate limit on the workers (`'10/s'`, `'100/m'`; null or `'0'` removes it). */
  rateLimit(
    taskName: string,
    rateLimit: string | number | null,
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('rate_limit', {
      ...options,
      arguments: { task_name: taskName, rate_limit: rateLimit },
    });
  }

  /** Sets a task's time limits on the workers, in seconds (Celery's units). */
  timeLimit(
    taskName: string,
    limits: { soft?: number | null; hard?: number | null },
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('time_limit', {
      ...options,
      arguments: { task_name: taskName, soft: limits.soft ?? null, hard: limits.hard ?? null },
    });
  }

  /** Tells the workers to consume `queue` too. */
  addConsumer(
    queue: string,
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('add_consumer', {
      ...options,
      arguments: { queue, exchange: null, exchange_type: 'direct', routing_key: null },
    });
  }

  /** Tells the workers to stop consuming `queue`. */
  cancelConsumer(
    queue: string,
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('cancel_consumer', { ...options, arguments: { queue } });
  }

  /** Grows the workers' concurrency by `n`. */
  poolGrow(
    n = DEFAULT_POOL_RESIZE_STEP,
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('pool_grow', { ...options, arguments: { n } });
  }

  /** Shrinks the workers' concurrency by `n`. */
  poolShrink(
    n = DEFAULT_POOL_RESIZE_STEP,
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('pool_shrink', { ...options, arguments: { n } });
  }

  /** Sets the workers' autoscale bounds. */
  autoscale(
    max: number,
    min: number,
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('autoscale', { ...options, arguments: { max, min } });
  }

  /** Turns task events on in the workers. */
  enableEvents(
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('enable_events', options);
  }

  /** Turns task events off in the workers. */
  disableEvents(
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('disable_events', options);
  }

  /** Asks the workers for a heartbeat event now. */
  heartbeat(options: ControlOptions = {}): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('heartbeat', options);
  }

  /** Shuts the workers down (gracefully). Give a destination unless you mean every worker. */
  shutdown(
    options: ControlOptions & { reply?: boolean } = {},
  ): Promise<NodeReplies<ControlAnswer>> {
    return this.broadcast('shutdown', options);
  }

  /**
   * Stops collecting replies (the reply queue is deleted with its consumer); a request still
   * waiting for replies resolves at once with those it has, and one made after resolves with
   * none. Commands that wait for no reply are still sent.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const endWait of this.waits) endWait();
    const replies = this.replies;
    this.replies = undefined;
    if (replies) await (await replies.catch(() => undefined))?.cancel();
  }

  private listenForReplies(): Promise<Consumer> {
    this.replies ??= this.subscribeReplies().catch((error: unknown) => {
      this.replies = undefined;
      throw error;
    });
    return this.replies;
  }

  private async subscribeReplies(): Promise<Consumer> {
    const transport = requireCapability(
      this.transport,
      'exchanges',
      'remote control with replies',
      '@conveyor/amqp-transport (or the memory transport)',
    );
    await transport.declareExchange(REPLY_EXCHANGE);
    return transport.subscribeExchange(
      REPLY_EXCHANGE.name,
      this.oid,
      (message) => {
        this.clock.adjust(message.headers.clock);
        const reply = decodeControlReply(message);
        const collect = reply?.ticket ? this.collectors.get(reply.ticket) : undefined;
        if (!reply || !collect) return;
        for (const [host, value] of Object.entries(reply.replies)) collect(host, value);
      },
      {
        queue: `${this.oid}.${REPLY_EXCHANGE.name}`,
        messageTtlMs: REPLY_QUEUE_TTL_MS,
        expiresMs: REPLY_QUEUE_EXPIRES_MS,
      },
    );
  }
}
