import {
  afterDelay,
  ConnectionError,
  isReadyState,
  parseCeleryJson,
  type ResultMeta,
} from '@conveyor/core/plugin';
import { Cluster } from 'ioredis';
import {
  MAX_WATCHED,
  REREAD_DELAY_MS,
  SUBSCRIBE_BATCH_SIZE,
  WATCH_SWEEP_INTERVAL_MS,
} from './defaults';
import type { RedisClient } from './redis-client';

/** What a {@link ResultSubscriber} needs from its backend. */
export interface ResultSubscriberDeps {
  /** Makes the subscriber connection (once, on the first wait). */
  connect(): RedisClient;
  /**
   * Reads keys on the command connection (a subscribed RESP2 connection cannot GET), one value
   * or null per key, bounded like every other operation of the backend.
   */
  readMany(keys: string[]): Promise<Array<string | null>>;
  /** Prepended to a key to get its channel (the `keyPrefix` of a user's ioredis client). */
  channelPrefix: string;
  /** How long a {@link ResultSubscriber.watch} lasts without a waiter; 0 turns watching off. */
  watchMs: number;
  /** Called after SUBSCRIBE is acknowledged and before the keys are read (a test seam). */
  afterSubscribe(keys: string[]): Promise<void>;
  /** Told of failures waiters cannot see (the connection's errors, a failed read). */
  onError(error: unknown): void;
  /** The server, credentials masked (`redis://user:***@host:6379`), for error messages. */
  target: string;
}

interface Waiter {
  settle(meta: ResultMeta | undefined): void;
  fail(error: ConnectionError): void;
}

interface Channel {
  key: string;
  waiters: Set<Waiter>;
  /** A watched channel without waiters is dropped after this time (ms since the epoch). */
  watchedUntil: number;
}

/** A ready result that arrived for a watched task before anyone waited for it. */
interface EarlyResult {
  meta: ResultMeta;
  until: number;
}

/**
 * One pub/sub connection serving every pending wait of a backend: a map of channel → waiters.
 * The order that makes waiting free of races is subscribe, then read the key once, then wait
 * for a message: a result stored before the subscription took effect is seen by the read, one
 * stored after is published to us.
 *
 * Subscriptions are batched: all channels that gained their first waiter in one turn of the
 * event loop go out in one SUBSCRIBE, and their keys are read together once it is
 * acknowledged. A channel is unsubscribed when its last waiter is done.
 *
 * A task can be watched from the moment it is sent, before anyone waits (Celery subscribes on
 * send too): its channel is subscribed and read at once, and a result that arrives with nobody
 * waiting is kept for a while, so the `get()` that usually follows settles without a round
 * trip. Watches and early results end by themselves after `watchMs`.
 *
 * Recovery is done here rather than by ioredis (`autoResubscribe` and
 * `autoResendUnfulfilledCommands` are off on this connection): a fresh connection has no
 * subscriptions, so on every `ready` all pending channels are subscribed again and their keys
 * read again, which finds results published while the connection was away. Letting ioredis
 * replay old SUBSCRIBE/UNSUBSCRIBE commands after that could drop a live subscription.
 * @internal
 */
export class ResultSubscriber {
  private readonly channels = new Map<string, Channel>();
  private readonly early = new Map<string, EarlyResult>();
  private watched = 0;
  private sweeper?: NodeJS.Timeout;
  private readonly toSubscribe = new Set<string>();
  private readonly toUnsubscribe = new Set<string>();
  private connection?: RedisClient;
  /** Bumped on every disconnect; work begun on an older connection is dropped. */
  private generation = 0;
  /** The last connection error since the connection was last ready: the cause of a failed wait. */
  private lastError?: Error;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly deps: ResultSubscriberDeps) {}

  /** The connection's last error since it was last ready, if any. */
  get lastConnectionError(): Error | undefined {
    return this.lastError;
  }

  /** Starts listening for the result at `key` before anyone waits for it. */
  watch(key: string): void {
    if (this.closed || this.deps.watchMs <= 0) return;
    const name = this.deps.channelPrefix + key;
    if (this.channels.has(name) || this.watched >= MAX_WATCHED) return;
    this.ensureConnection();
    this.channels.set(name, {
      key,
      waiters: new Set(),
      watchedUntil: Date.now() + this.deps.watchMs,
    });
    this.watched += 1;
    this.toSubscribe.add(name);
    this.scheduleFlush();
    this.startSweeper();
  }

  /**
   * Waits for a ready meta at `key`; undefined after `timeoutMs` or on {@link close}. A wait
   * that times out while Redis cannot be reached rejects then with a {@link ConnectionError}
   * naming the server and the cause, rather than passing for a task that is still pending.
   */
  wait(key: string, timeoutMs: number): Promise<ResultMeta | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const name = this.deps.channelPrefix + key;
    const early = this.early.get(name);
    if (early) {
      this.early.delete(name);
      return Promise.resolve(early.meta);
    }
    this.ensureConnection();
    return new Promise((resolve, reject) => {
      let channel = this.channels.get(name);
      if (!channel) {
        channel = { key, waiters: new Set(), watchedUntil: 0 };
        this.channels.set(name, channel);
        this.toSubscribe.add(name);
        this.scheduleFlush();
      }
      const joined = channel;
      let cancelTimer = (): void => undefined;
      const leave = (): void => {
        cancelTimer();
        joined.waiters.delete(waiter);
        if (joined.waiters.size === 0 && this.channels.get(name) === joined) this.drop(name);
      };
      const waiter: Waiter = {
        settle: (meta) => {
          leave();
          resolve(meta);
        },
        fail: (error) => {
          leave();
          reject(error);
        },
      };
      if (joined.waiters.size === 0 && joined.watchedUntil > 0) this.watched -= 1;
      joined.watchedUntil = 0;
      joined.waiters.add(waiter);
      cancelTimer = afterDelay(timeoutMs, () => {
        const unreachable = this.unreachable(key, timeoutMs);
        if (unreachable) waiter.fail(unreachable);
        else waiter.settle(undefined);
      });
    });
  }

  /** Why a wait that timed out could not have seen its result: Redis is not reachable now. */
  private unreachable(key: string, timeoutMs: number): ConnectionError | undefined {
    if (this.connection?.status === 'ready') return undefined;
    const why = this.lastError ? `: ${this.lastError.message}` : '';
    return new ConnectionError(
      `redis: ${this.deps.target} could not be reached while waiting ${timeoutMs} ms for ${key}${why}`,
      { cause: this.lastError },
    );
  }

  /**
   * Ends every pending wait with undefined and closes the connection. Returns what was wrong
   * when the connection could not reach Redis at that moment (nothing to close cleanly).
   */
  close(): string | undefined {
    if (this.closed) return undefined;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const channel of [...this.channels.values()]) {
      for (const waiter of [...channel.waiters]) waiter.settle(undefined);
    }
    this.channels.clear();
    this.early.clear();
    const status = this.connection?.status;
    this.connection?.disconnect();
    // Still connecting with no error yet is a close, not an outage.
    if (status === undefined || status === 'ready' || !this.lastError) return undefined;
    const why = this.lastError ? `: ${this.lastError.message}` : '';
    return `the subscriber connection could not reach the server (${status}${why})`;
  }

  private ensureConnection(): void {
    if (this.connection) return;
    const connection = this.deps.connect();
    this.connection = connection;
    connection.on('message', (channel: string, message: string) => this.deliver(channel, message));
    connection.on('close', () => this.onClose());
    connection.on('ready', () => this.onReady());
    // Connection errors are retried by ioredis; a wait that times out meanwhile names the last,
    // and the backend's error hook hears of each (without a listener an `error` event would throw).
    connection.on('error', (error: Error) => {
      this.lastError = error;
      this.deps.onError(error);
    });
  }

  private onClose(): void {
    this.generation += 1;
    // The next connection starts with no subscriptions: nothing queued is meaningful any more.
    this.toSubscribe.clear();
    this.toUnsubscribe.clear();
  }

  private onReady(): void {
    this.lastError = undefined;
    if (this.closed) return;
    this.toUnsubscribe.clear();
    for (const name of this.channels.keys()) this.toSubscribe.add(name);
    this.flush();
  }

  private drop(name: string): void {
    const channel = this.channels.get(name);
    if (channel && channel.watchedUntil > 0) this.watched -= 1;
    this.channels.delete(name);
    // Never sent: nothing to undo. Otherwise the server holds (or is about to hold) it.
    if (!this.toSubscribe.delete(name)) this.toUnsubscribe.add(name);
    this.scheduleFlush();
  }

  private startSweeper(): void {
    if (this.sweeper) return;
    const every = Math.min(WATCH_SWEEP_INTERVAL_MS, Math.max(10, this.deps.watchMs / 2));
    this.sweeper = setInterval(() => this.sweep(), every);
    this.sweeper.unref();
  }

  /** Ends watches nobody joined and forgets early results nobody asked for, once their time is up. */
  private sweep(): void {
    const now = Date.now();
    for (const [name, channel] of this.channels) {
      if (channel.waiters.size === 0 && channel.watchedUntil > 0 && channel.watchedUntil <= now) {
        this.drop(name);
      }
    }
    for (const [name, early] of this.early) if (early.until <= now) this.early.delete(name);
    if (this.watched === 0 && this.early.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Two turns, like `coalesceWrites`: a task published in this turn (a watch is made right
    // after its publish) has its frames written by amqplib on the next turn, before our writes.
    setImmediate(() =>
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      }),
    );
  }

  private flush(): void {
    const connection = this.connection;
    // Not ready: the `ready` handler subscribes everything pending, so nothing is lost here.
    if (this.closed || !connection || connection.status !== 'ready') return;
    const generation = this.generation;
    // The commands of one flush leave in one socket write: ioredis writes each as it is sent,
    // and a write costs more than the command (tens to hundreds of µs on a loaded machine).
    const stream = connection instanceof Cluster ? undefined : connection.stream;
    stream?.cork();
    try {
      // Unsubscribes first: a channel in both sets lost its waiters and then gained new ones.
      for (const batch of chunks([...this.toUnsubscribe])) {
        connection.unsubscribe(...batch).catch(() => undefined);
      }
      this.toUnsubscribe.clear();
      for (const batch of chunks([...this.toSubscribe])) {
        void this.subscribeAndRead(connection, batch, generation);
      }
      this.toSubscribe.clear();
    } finally {
      stream?.uncork();
    }
  }

  private async subscribeAndRead(
    connection: RedisClient,
    names: string[],
    generation: number,
  ): Promise<void> {
    try {
      await connection.subscribe(...names);
    } catch {
      // The connection went away; `ready` on the next one subscribes and reads these again.
      return;
    }
    if (generation !== this.generation) return;
    await this.read(names);
  }

  /** Reads the keys of the channels that still have waiters, and settles those that are ready. */
  private async read(names: string[]): Promise<void> {
    const live = names.filter((name) => this.channels.has(name));
    if (live.length === 0 || this.closed) return;
    const keys = live.map((name) => this.channels.get(name)!.key);
    await this.deps.afterSubscribe(keys).catch(() => undefined);
    let values: Array<string | null>;
    try {
      values = await this.deps.readMany(keys);
    } catch (error) {
      // A read the close cut short is not an outage: nothing to report, nobody left to serve.
      if (this.closed) return;
      this.deps.onError(error);
      // The subscription is live, so later results arrive as messages; only one stored before
      // it could be missed, so the read is tried again while anyone still waits.
      if (!this.closed) setTimeout(() => void this.read(live), REREAD_DELAY_MS).unref();
      return;
    }
    values.forEach((value, i) => {
      if (value !== null) this.deliver(live[i]!, value);
    });
  }

  private deliver(name: string, payload: string): void {
    const channel = this.channels.get(name);
    if (!channel) return;
    const meta = readyMeta(payload);
    if (!meta) return;
    if (channel.waiters.size === 0) {
      // Watched, and nobody waits yet: keep it for the wait that usually follows.
      if (this.early.size < MAX_WATCHED) {
        this.early.set(name, { meta, until: Date.now() + this.deps.watchMs });
      }
      this.drop(name);
      return;
    }
    // Each waiter gets its own copy, so one caller mutating its result cannot affect another.
    let first = true;
    for (const waiter of [...channel.waiters]) {
      waiter.settle(first ? meta : (parseCeleryJson(payload) as ResultMeta));
      first = false;
    }
  }
}

/** The meta in `payload` when it is one in a ready state; undefined for anything else (ignored). */
function readyMeta(payload: string): ResultMeta | undefined {
  let parsed: unknown;
  try {
    parsed = parseCeleryJson(payload);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const status = (parsed as { status?: unknown }).status;
  return typeof status === 'string' && isReadyState(status) ? (parsed as ResultMeta) : undefined;
}

function chunks(names: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < names.length; i += SUBSCRIBE_BATCH_SIZE)
    out.push(names.slice(i, i + SUBSCRIBE_BATCH_SIZE));
  return out;
}
