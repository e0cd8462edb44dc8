import { Cluster, Redis } from 'ioredis';
import {
  BackgroundErrors,
  bounded,
  coalesceWrites,
  ConnectionError,
  OptionChecker,
  Redactor,
  redactUrl,
  type BackgroundErrorHandler,
  isReadyState,
  parseCeleryJson,
  stringifyCeleryJson,
  type GroupMeta,
  type ResultBackend,
  type ResultMeta,
} from '@conveyor/core/plugin';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECTION_NAME,
  DEFAULT_GROUP_KEY_PREFIX,
  DEFAULT_KEY_PREFIX,
  DEFAULT_RESULT_EXPIRES_MS,
  DEFAULT_URL,
  DEFAULT_WATCH_ON_SEND_MS,
} from './defaults';
import type { RedisClient } from './redis-client';
import type { RedisResultBackendOptions } from './redis-result-backend-options';
import { ResultSubscriber } from './result-subscriber';
import { runStoreScript } from './store-script';

/**
 * Stores results in Redis the way Celery's Redis backend does: the JSON meta at
 * `celery-task-meta-<id>` with an expiry, published on the channel of the same name. Python
 * Celery and Conveyor read each other's results.
 *
 * Two connections at most: one for commands, and one subscriber, made on the first wait, that
 * serves every pending {@link waitForReady} of this instance.
 */
export class RedisResultBackend implements ResultBackend {
  private readonly client: RedisClient;
  private readonly ownsClient: boolean;
  private readonly keyPrefix: string;
  private readonly groupKeyPrefix: string;
  private readonly expiresMs: number;
  private readonly timeoutMs: number;
  private readonly subscriberName: string;
  private readonly subscriber: ResultSubscriber;
  /** The server, credentials masked, for messages. */
  private readonly target: string;
  /** The command connection's last error since it was last ready. */
  private lastError?: Error;
  private readonly errors: BackgroundErrors;
  private readonly onClientError: (error: Error) => void;
  private readonly onClientReady: () => void;
  private closed = false;

  constructor(options: RedisResultBackendOptions = {}) {
    this.keyPrefix = check.string('keyPrefix', options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.groupKeyPrefix = check.string(
      'groupKeyPrefix',
      options.groupKeyPrefix ?? DEFAULT_GROUP_KEY_PREFIX,
    );
    const numbers = check.numbers(options, {
      resultExpiresMs: { default: DEFAULT_RESULT_EXPIRES_MS, min: 0 },
      commandTimeoutMs: { default: DEFAULT_COMMAND_TIMEOUT_MS, min: 1 },
      watchOnSendMs: { default: DEFAULT_WATCH_ON_SEND_MS, min: 0 },
    });
    this.expiresMs = numbers.resultExpiresMs;
    this.timeoutMs = numbers.commandTimeoutMs;
    if (this.keyPrefix === this.groupKeyPrefix) {
      check.fail('keyPrefix and groupKeyPrefix must differ, or groups would overwrite results');
    }
    const baseName = check.string(
      'connectionName',
      options.connectionName ?? DEFAULT_CONNECTION_NAME,
      { pattern: { test: /^[^\s]+$/, description: 'non-empty, without spaces' } },
    );
    this.subscriberName = `${baseName}-sub:${process.pid}`;
    const connectTimeoutMs =
      options.connectTimeoutMs === undefined
        ? undefined
        : check.number('connectTimeoutMs', options.connectTimeoutMs, { min: 1 });
    const redactor = new Redactor([options.url]);
    this.errors = new BackgroundErrors('redis', options.onError);
    const report = (error: unknown): void => {
      // This backend's own errors already start with `redis: `; ioredis's do not.
      const text = redactor.redact(messageOf(error));
      const message = text.startsWith('redis: ') ? text : `redis: ${text}`;
      this.errors.report(new ConnectionError(message, { cause: error }));
    };

    if (options.client && options.url !== undefined) {
      check.fail('give either `url` or `client`, not both');
    }
    if (options.client) {
      this.client = options.client;
      this.ownsClient = options.closeClient ?? false;
    } else {
      const url = options.url ?? DEFAULT_URL;
      checkUrl(url);
      // Lazy: building the app (at import time, in tests) must not open connections.
      this.client = new Redis(url, {
        ...(connectTimeoutMs === undefined ? {} : { connectTimeout: connectTimeoutMs }),
        ...options.redisOptions,
        lazyConnect: true,
        connectionName: `${baseName}:${process.pid}`,
      });
      this.ownsClient = true;
    }
    // ioredis reconnects on its own; failures reach callers as rejected operations (the last one
    // named when they time out), and what happens between calls reaches the error hook.
    this.onClientError = (error: Error) => {
      this.lastError = error;
      report(error);
    };
    this.onClientReady = () => {
      this.lastError = undefined;
    };
    this.client.on('error', this.onClientError);
    this.client.on('ready', this.onClientReady);

    this.target = targetOf(this.client, options.url ?? (options.client ? undefined : DEFAULT_URL));
    this.subscriber = new ResultSubscriber({
      connect: () => this.createSubscriberConnection(),
      readMany: (keys) =>
        this.run(`read of ${keys.length} results`, () => readKeys(this.client, keys)),
      channelPrefix: channelPrefixOf(this.client),
      watchMs: numbers.watchOnSendMs,
      afterSubscribe: (keys) => this.afterSubscribe(keys),
      target: this.target,
      onError: report,
    });
  }

  /**
   * Adds a listener for the failures this backend meets in the background, besides its `onError`
   * option: how a worker running on it reports them as its `worker-error` event. Returns a
   * function that removes the listener.
   */
  onBackgroundError(listener: BackgroundErrorHandler): () => void {
    return this.errors.listen(listener);
  }

  async connect(): Promise<void> {
    // PING starts a lazy connection and settles once it is usable.
    await this.run('connect', () => this.client.ping());
  }

  async store(meta: ResultMeta): Promise<void> {
    const json = stringifyCeleryJson(meta);
    await this.run(`store of task ${meta.task_id}`, () =>
      runStoreScript(this.client, this.keyPrefix + meta.task_id, json, this.expiresMs),
    );
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    const raw = await this.run(`read of task ${taskId}`, () =>
      this.client.get(this.keyPrefix + taskId),
    );
    return raw === null ? undefined : (parseCeleryJson(raw) as ResultMeta);
  }

  /** One MGET for many tasks. */
  async getMany(taskIds: readonly string[]): Promise<Array<ResultMeta | undefined>> {
    if (taskIds.length === 0) return [];
    const raw = await this.run(`read of ${taskIds.length} tasks`, () =>
      readKeys(
        this.client,
        taskIds.map((id) => this.keyPrefix + id),
      ),
    );
    return raw.map((value) =>
      value === null ? undefined : (parseCeleryJson(value) as ResultMeta),
    );
  }

  async waitForReady(taskId: string, timeoutMs: number): Promise<ResultMeta | undefined> {
    if (this.closed) return undefined;
    if (timeoutMs <= 0) {
      // No time to wait for a message: a single read answers.
      const meta = await this.get(taskId).catch(() => undefined);
      return meta && isReadyState(meta.status) ? meta : undefined;
    }
    return this.subscriber.wait(this.keyPrefix + taskId, timeoutMs);
  }

  /** Subscribes to the task's channel now, as Celery does on send; see `watchOnSendMs`. */
  watch(taskId: string): void {
    if (!this.closed) this.subscriber.watch(this.keyPrefix + taskId);
  }

  async forget(taskId: string): Promise<void> {
    await this.run(`forget of task ${taskId}`, () => this.client.del(this.keyPrefix + taskId));
  }

  /**
   * Stores the group the way Celery's `_save_group` does, `{"result": [[id, parent], members]}`
   * (a GroupResult's `as_tuple()`), so Python's `GroupResult.restore(id)` reads it; other fields
   * of `meta` (date_done) ride along, which Celery ignores.
   */
  async storeGroup(meta: GroupMeta): Promise<void> {
    const key = this.groupKeyPrefix + meta.group_id;
    const { group_id: groupId, result: members, ...rest } = meta;
    const json = stringifyCeleryJson({ ...rest, result: [[groupId, null], members] });
    await this.run(`store of group ${meta.group_id}`, () =>
      this.expiresMs > 0
        ? this.client.set(key, json, 'PX', this.expiresMs)
        : this.client.set(key, json),
    );
  }

  async getGroup(groupId: string): Promise<GroupMeta | undefined> {
    const raw = await this.run(`read of group ${groupId}`, () =>
      this.client.get(this.groupKeyPrefix + groupId),
    );
    return raw === null ? undefined : groupMetaOf(groupId, parseCeleryJson(raw));
  }

  async forgetGroup(groupId: string): Promise<void> {
    await this.run(`forget of group ${groupId}`, () =>
      this.client.del(this.groupKeyPrefix + groupId),
    );
  }

  /** The Redis server, password masked (`redis://user:***@host:6379/0`). */
  describe(): string {
    return this.target;
  }

  /**
   * Ends every pending wait, closes the subscriber and (when it owns it) the command connection.
   * Bounded by `commandTimeoutMs` whatever the state of Redis. Rejects, once everything is
   * released, with a ConnectionError naming the server when the connection could not be closed
   * cleanly (Redis unreachable: commands still queued were dropped).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const problems = [this.subscriber.close()];
    if (!this.ownsClient) {
      this.client.off('error', this.onClientError);
      this.client.off('ready', this.onClientReady);
    }
    if (this.ownsClient)
      problems.push(await closeClient(this.client, this.timeoutMs, this.lastError));
    const found = problems.filter((p): p is string => p !== undefined);
    if (found.length > 0) {
      throw new ConnectionError(`redis: ${this.target}: not closed cleanly: ${found.join('; ')}`, {
        cause: this.lastError ?? this.subscriber.lastConnectionError,
      });
    }
  }

  /**
   * Called by the subscriber after a SUBSCRIBE is acknowledged and before the subscribed keys
   * are read. Does nothing. It exists so that tests can land a result in exactly that window
   * and prove it is not missed; overriding it in production code has no use.
   * @param _keys the result keys about to be read
   */
  protected async afterSubscribe(_keys: string[]): Promise<void> {}

  private createSubscriberConnection(): RedisClient {
    // The subscriber resubscribes and re-reads by itself on every `ready`; see ResultSubscriber.
    const overrides = {
      connectionName: this.subscriberName,
      lazyConnect: false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
    };
    if (this.client instanceof Cluster) {
      return this.client.duplicate([], {
        ...overrides,
        redisOptions: { ...this.client.options.redisOptions, ...overrides },
      });
    }
    return this.client.duplicate(overrides);
  }

  private run<T>(what: string, operation: () => Promise<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(new ConnectionError(`redis: ${what} after the backend was closed`));
    coalesceCommands(this.client);
    return bounded(
      operation(),
      this.timeoutMs,
      `redis: ${this.target}: ${what}`,
      () => this.lastError,
    );
  }
}

const check: OptionChecker = new OptionChecker('RedisResultBackend');

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Values of many keys: one MGET on a single node. A cluster refuses an MGET whose keys live in
 * different slots, so there each key is read with its own GET.
 */
function readKeys(client: RedisClient, keys: string[]): Promise<Array<string | null>> {
  if (client instanceof Cluster) return Promise.all(keys.map((key) => client.get(key)));
  return client.mget(...keys);
}

/**
 * ioredis writes every command to the socket as it is sent: a worker storing the results of one
 * turn would make one syscall per result. Commands of the same turn leave in one write instead.
 * A cluster has a socket per node; its commands are written as they come.
 */
function coalesceCommands(client: RedisClient): void {
  if (client instanceof Cluster || client.status !== 'ready') return;
  coalesceWrites(client.stream);
}

/**
 * QUIT lets commands already sent finish; during an outage it would wait in the offline queue,
 * so it is bounded, then the connection is dropped. Resolves once the connection has ended, or
 * after `timeoutMs` at most, with what went wrong, if anything. Its timers keep the process
 * alive: a script awaiting close() must see it settle, not exit with it pending.
 */
async function closeClient(
  client: RedisClient,
  timeoutMs: number,
  lastError: Error | undefined,
): Promise<string | undefined> {
  if (client.status === 'end') return undefined;
  const wasConnected = client.status === 'ready';
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  let problem: string | undefined;
  if (client.status === 'ready') {
    const quit = await within(client.quit(), timeoutMs);
    if (quit !== 'done') {
      problem = `QUIT ${quit === 'timeout' ? `did not complete within ${timeoutMs} ms` : 'failed'}; the connection was dropped`;
      client.disconnect();
    }
  } else {
    // Not connected (lazy, connecting or reconnecting): nothing to finish, and QUIT would queue.
    const status = client.status;
    client.disconnect();
    if (lastError) {
      const why = lastError ? `: ${lastError.message}` : '';
      problem = `the server was unreachable (${status}${why}); commands still queued were dropped`;
    }
  }
  // A client disconnected before it ever connected, or while reconnecting, emits no 'end'.
  if (wasConnected) await within(ended, timeoutMs);
  return problem;
}

/** How `operation` ended within `timeoutMs`; the timer is ref'd on purpose (see closeClient). */
async function within(
  operation: Promise<unknown>,
  timeoutMs: number,
): Promise<'done' | 'failed' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return await Promise.race([
      operation.then(
        () => 'done' as const,
        () => 'failed' as const,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The server of `client`, credentials masked, for messages: its URL, or its host and port. */
function targetOf(client: RedisClient, url: string | undefined): string {
  if (url !== undefined) return redactUrl(url);
  if (client instanceof Cluster) {
    const nodes = client.nodes().map((node) => `${node.options.host}:${node.options.port}`);
    return `redis cluster ${nodes.join(', ') || '(no nodes yet)'}`;
  }
  const { host, port, db } = client.options;
  return `redis://${host ?? '127.0.0.1'}:${port ?? 6379}/${db ?? 0}`;
}

function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    check.fail(`invalid Redis url ${redactUrl(url)}`);
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    check.fail(`the url must start with redis:// or rediss://, got ${redactUrl(url)}`);
  }
}

/**
 * ioredis prefixes keys (KEYS[1] of the store script included) with a client's `keyPrefix`,
 * but not channel names: the script publishes on the prefixed key, so that is what to subscribe.
 */
function channelPrefixOf(client: RedisClient): string {
  const prefix: unknown = client.options.keyPrefix;
  return typeof prefix === 'string' ? prefix : '';
}

/**
 * A stored group as a {@link GroupMeta}: Celery's `{"result": [[id, parent], members]}`, or the
 * `{group_id, result: members}` form Conveyor wrote before it stored Celery's.
 */
function groupMetaOf(groupId: string, stored: unknown): GroupMeta | undefined {
  if (typeof stored !== 'object' || stored === null) return undefined;
  const { result, ...rest } = stored as Record<string, unknown>;
  if (typeof rest.group_id === 'string' && Array.isArray(result)) {
    return { ...rest, group_id: rest.group_id, result };
  }
  const tuple = Array.isArray(result) && result.length === 2 ? result : undefined;
  const members = tuple && Array.isArray(tuple[1]) ? (tuple[1] as unknown[]) : undefined;
  return members ? { ...rest, group_id: groupId, result: members } : undefined;
}
