import type { BackgroundErrorHandler } from '@conveyor/core/plugin';
import type { Cluster, Redis, RedisOptions } from 'ioredis';

/** Options of {@link RedisResultBackend}. Give either `url` or `client`, not both. */
export interface RedisResultBackendOptions {
  /**
   * Where Redis is: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. The
   * password is never echoed in errors. For Sentinel or Cluster, pass a `client` instead.
   * @defaultValue `'redis://127.0.0.1:6379'` when `client` is not given either
   */
  url?: string | undefined;
  /**
   * An existing ioredis `Redis` (single node or Sentinel) or `Cluster` to use for commands. The
   * subscriber connection is made from it with `duplicate()`, so it inherits its settings.
   * The client is not renamed, and is not closed by `close()` unless `closeClient` is true.
   * @defaultValue undefined (a connection is made from `url`)
   */
  client?: Redis | Cluster;
  /**
   * Whether `close()` also closes the given `client`. Connections the backend made itself are
   * always closed.
   * @defaultValue false
   */
  closeClient?: boolean;
  /**
   * How long opening a connection made from `url` may take (ioredis' `connectTimeout`, which a
   * `redisOptions.connectTimeout` overrides). Ignored when `client` is given.
   * @defaultValue 10_000 (ioredis' default)
   */
  connectTimeoutMs?: number;
  /**
   * Called with failures between calls that no caller's promise carries: a lost or refused
   * connection (ioredis reconnects by itself), a failed read while results are awaited. A
   * `ConnectionError` without credentials in its message. A worker also reports them as its
   * `worker-error` event.
   * @defaultValue a `console.warn`, at most once every ten seconds
   */
  onError?: BackgroundErrorHandler;
  /**
   * Further ioredis options for connections made from `url` (TLS certificates, `retryStrategy`,
   * `connectTimeout`, ...). Ignored when `client` is given.
   * @defaultValue `{}`
   */
  redisOptions?: RedisOptions;
  /**
   * Prefix of task result keys; the key is `<keyPrefix><task id>` and results are published on
   * the channel of the same name. Keep the default to share results with Python Celery.
   * @defaultValue `'celery-task-meta-'`
   */
  keyPrefix?: string;
  /**
   * Prefix of group keys: `<groupKeyPrefix><group id>`.
   * @defaultValue `'celery-taskset-meta-'`
   */
  groupKeyPrefix?: string;
  /**
   * Stored results and groups expire this long after they were written; 0 keeps them forever.
   * @defaultValue 86_400_000 (one day, as Celery's `result_expires`)
   */
  resultExpiresMs?: number;
  /**
   * When a producer sends a task whose result is kept, the backend subscribes to its channel at
   * once (as Celery does on send) and keeps a result that arrives before anyone waits, for this
   * long; a `get()` within that time then settles without a round trip. After it, a wait reads
   * Redis as usual. 0 turns this off (each `get()` subscribes when called).
   * @defaultValue 10_000
   */
  watchOnSendMs?: number;
  /**
   * Longest time one operation (`store`, `get`, `forget`, ...) may take before it rejects with
   * a `ConnectionError`, including time spent waiting for a lost connection to come back. A
   * worker retries a failed `store()` with backoff, so this bounds each attempt, not the task.
   * @defaultValue 10_000
   */
  commandTimeoutMs?: number;
  /**
   * Base of the connection names set with CLIENT SETNAME, so that `CLIENT LIST` shows who is
   * connected: the command connection is `<connectionName>:<pid>` (only when the backend made
   * it from `url`) and the subscriber `<connectionName>-sub:<pid>`. No spaces.
   * @defaultValue `'conveyor:results'`
   */
  connectionName?: string;
}
