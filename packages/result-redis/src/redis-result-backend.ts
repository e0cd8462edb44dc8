import { Cluster, Redis } from 'ioredis';
import {
  coalesceWrites,
  ConfigError,
  ConnectionError,
  isReadyState,
  parseCeleryJson,
  type GroupMeta,
  type ResultBackend,
  type ResultMeta,
} from '@conveyor/core';
import { bounded } from './bounded';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_CONNECTION_NAME,
  DEFAULT_GROUP_KEY_PREFIX,
  DEFAULT_KEY_PREFIX,
  DEFAULT_RESULT_EXPIRES_MS,
  DEFAULT_URL,
  DEFAULT_WATCH_ON_SEND_MS,
} from './defaults';
import { redactUrl } from './redact-url';
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
  private readonly location: string;
  private readonly keyPrefix: string;
  private readonly groupKeyPrefix: string;
  private readonly expiresMs: number;
  private readonly timeoutMs: number;
  private readonly subscriberName: string;
  private readonly subscriber: ResultSubscriber;
  private closed = false;

  constructor(options: RedisResultBackendOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.groupKeyPrefix = options.groupKeyPrefix ?? DEFAULT_GROUP_KEY_PREFIX;
    this.expiresMs = nonNegative(
      'resultExpiresMs',
      options.resultExpiresMs ?? DEFAULT_RESULT_EXPIRES_MS,
    );
    this.timeoutMs = nonNegative(
      'commandTimeoutMs',
      options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    );
    if (this.timeoutMs === 0) throw new ConfigError('commandTimeoutMs must be greater than 0');
    if (this.keyPrefix === this.groupKeyPrefix) {
      throw new ConfigError(
        'keyPrefix and groupKeyPrefix must differ, or groups would overwrite results',
      );
    }
    const baseName = options.connectionName ?? DEFAULT_CONNECTION_NAME;
    if (!/^[^\s]+$/.test(baseName))
      throw new ConfigError('connectionName must be non-empty and have no spaces');
    this.subscriberName = `${baseName}-sub:${process.pid}`;

    if (options.client && options.url !== undefined) {
      throw new ConfigError('give RedisResultBackend either `url` or `client`, not both');
    }
    if (options.client) {
      this.location = 'redis (a client the app gave)';
      this.client = options.client;
      this.ownsClient = options.closeClient ?? false;
    } else {
      const url = options.url ?? DEFAULT_URL;
      checkUrl(url);
      this.location = redactUrl(url);
      // Lazy: building the app (at import time, in tests) must not open connections.
      this.client = new Redis(url, {
        ...options.redisOptions,
        lazyConnect: true,
        connectionName: `${baseName}:${process.pid}`,
      });
      // ioredis reconnects on its own; failures reach callers as rejected operations.
      this.client.on('error', () => undefined);
      this.ownsClient = true;
    }

    this.subscriber = new ResultSubscriber({
      connect: () => this.createSubscriberConnection(),
      readMany: (keys) =>
        this.run(`read of ${keys.length} results`, () => readKeys(this.client, keys)),
      channelPrefix: channelPrefixOf(this.client),
      watchMs: nonNegative('watchOnSendMs', options.watchOnSendMs ?? DEFAULT_WATCH_ON_SEND_MS),
      afterSubscribe: (keys) => this.afterSubscribe(keys),
    });
  }

  async connect(): Promise<void> {
    // PING starts a lazy connection and settles once it is usable.
    await this.run('connect', () => this.client.ping());
  }

  async store(meta: ResultMeta): Promise<void> {
    const json = JSON.stringify(meta);
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
    const json = JSON.stringify({ ...rest, result: [[groupId, null], members] });
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

  /** The Redis URL, password masked. */
  describe(): string {
    return this.location;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriber.close();
    if (!this.ownsClient) return;
    await closeClient(this.client, this.timeoutMs);
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
    return bounded(operation(), this.timeoutMs, what);
  }
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
 * so it is bounded, then the connection is dropped. Resolves once the connection has ended.
 */
async function closeClient(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'end') return;
  const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
  if (client.status === 'ready') {
    await bounded(client.quit(), timeoutMs, 'quit').catch(() => client.disconnect());
  } else {
    // Not connected (lazy, connecting or reconnecting): nothing to finish, and QUIT would queue.
    client.disconnect();
  }
  await bounded(ended, timeoutMs, 'close').catch(() => undefined);
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0)
    throw new ConfigError(`${name} must be a finite number >= 0`);
  return value;
}

function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new ConfigError(`invalid Redis url ${redactUrl(url)}`);
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new ConfigError(`Redis url must start with redis:// or rediss://, got ${redactUrl(url)}`);
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
