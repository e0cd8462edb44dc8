import { OptionChecker, renamedOption, type BackgroundErrorHandler } from '@conveyor/core/plugin';
import type { ClientConfig, Pool, PoolConfig } from 'pg';
import {
  DEFAULT_APPLICATION_NAME,
  DEFAULT_CONNECTION_TIMEOUT_MS,
  DEFAULT_EXPIRY_BATCH_SIZE,
  DEFAULT_GROUP_TABLE,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_POLL_INTERVAL_MS,
  DEFAULT_MIN_POLL_INTERVAL_MS,
  DEFAULT_RESULT_EXPIRES_MS,
  DEFAULT_SCHEMA,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  DEFAULT_STORE_BATCH_SIZE,
  DEFAULT_TABLE,
  POOL_IDLE_TIMEOUT_MS,
} from './defaults';
import { validateTables, type ResultTables } from './schema';

/**
 * Options of {@link PostgresResultBackend}. Give exactly one of `url` and `pool`.
 */
export interface PostgresResultBackendOptions {
  /**
   * A libpq-style URL, e.g. `postgresql://user:secret@db:5432/app`. The backend creates and owns
   * its pool. The user name and password never appear in errors or logs.
   * @defaultValue none: either this or `pool` is required
   */
  url?: string | undefined;
  /**
   * The old name of `url`.
   * @deprecated Give `url`; this name leaves in the next minor version.
   */
  connectionString?: string | undefined;
  /**
   * An existing pool to run on instead. Its own settings apply (size, timeouts): set
   * `statement_timeout` on it, since the backend can only bound its queries client-side here.
   * @defaultValue none: either this or `url` is required
   */
  pool?: Pool;
  /**
   * With `pool`: whether `close()` ends that pool too. Off, because a pool passed in usually
   * serves the rest of the application.
   * @defaultValue false
   */
  closeClient?: boolean;
  /**
   * The old name of `closeClient`.
   * @deprecated Give `closeClient`; this name leaves in the next minor version.
   */
  endPool?: boolean;
  /**
   * Schema of the tables. Letters, digits and underscores only; not starting with `pg_`.
   * @defaultValue 'public'
   */
  schema?: string;
  /**
   * Table of task results (letters, digits and underscores, at most 48 characters).
   * @defaultValue 'conveyor_task_results'
   */
  table?: string;
  /**
   * Table of group metas (same rules as `table`).
   * @defaultValue 'conveyor_group_results'
   */
  groupTable?: string;
  /**
   * Whether the backend creates its schema, tables and indexes on first use. Turn off when they
   * are created by your own migrations from `sql/schema.sql`.
   * @defaultValue true
   */
  createSchema?: boolean;
  /**
   * Most connections in the pool the backend creates (not allowed with `pool`). Waiting does
   * not scale with it: one poller, one query at a time, serves every pending wait. Stores
   * normally use at most 2 connections at a time (see `storeBatchSize`). With `notify`, one more
   * connection outside the pool listens while waits are pending.
   * @defaultValue 10
   */
  maxConnections?: number;
  /**
   * How long opening a connection may take; an operation that cannot connect fails with
   * `ConnectionError` after about this long.
   * @defaultValue 5_000
   */
  connectTimeoutMs?: number;
  /**
   * The old name of `connectTimeoutMs`.
   * @deprecated Give `connectTimeoutMs`; this name leaves in the next minor version.
   */
  connectionTimeoutMs?: number;
  /**
   * Server-side `statement_timeout` of the backend's connections; also, plus a short grace, the
   * client-side limit on every query (so a connection that stopped answering cannot hang one).
   * @defaultValue 10_000
   */
  statementTimeoutMs?: number;
  /**
   * `application_name` of the backend's connections, as shown in `pg_stat_activity`.
   * @defaultValue 'conveyor-results'
   */
  connectionName?: string;
  /**
   * The old name of `connectionName`.
   * @deprecated Give `connectionName`; this name leaves in the next minor version.
   */
  applicationName?: string;
  /**
   * Results (and groups) older than this, since their last write, are no longer returned and
   * are deleted by the expiry sweep; 0 keeps them forever.
   * @defaultValue 86_400_000 (one day, as Celery's `result_expires`)
   */
  resultExpiresMs?: number;
  /**
   * How often this instance runs an expiry sweep by itself, from its first connection until
   * `close()`. Off by default because Conveyor workers already call `sweepExpired()` on their own
   * schedule (`WorkerOptions.expirySweepIntervalMs`); turn it on for a deployment with no
   * Conveyor worker. Only one process sweeps at a time.
   * @defaultValue 0 (off: workers sweep)
   */
  expirySweepIntervalMs?: number;
  /**
   * Rows deleted per statement by the expiry sweep: bounds how long each DELETE holds locks.
   * @defaultValue 1_000
   */
  expiryBatchSize?: number;
  /**
   * Delay of the first look for a new wait, and the starting interval of the full poll (which
   * comes back to it after a result it found when no notifications are received).
   * @defaultValue 5
   */
  minPollIntervalMs?: number;
  /**
   * The poll interval doubles while nothing changes, up to this: the worst-case delay between a
   * result being stored and a waiter seeing it when no notification arrives.
   * @defaultValue 500
   */
  maxPollIntervalMs?: number;
  /**
   * Whether stores of a final state send a NOTIFY and waits LISTEN for it, so waiters usually
   * wake within milliseconds instead of at the next poll. Polling still guarantees delivery.
   * Turn off on very write-heavy databases: NOTIFY serialises committing transactions.
   * @defaultValue true
   */
  notify?: boolean;
  /**
   * Most rows one store statement writes. Stores made while earlier ones are still being
   * committed are sent together as one multi-row upsert (one commit, one NOTIFY) and each
   * `store()` resolves when its batch commits; an idle backend sends each store at once.
   * `1` sends every store as its own statement.
   * @defaultValue 100
   */
  storeBatchSize?: number;
  /**
   * Called with failures of background work (polling, listening, expiry sweeps, a pooled
   * connection that died while idle), which is retried on its own, as `ConnectionError`s whose
   * messages never hold credentials. A worker also reports them as its `worker-error` event.
   * @defaultValue a `console.warn`, at most once every ten seconds
   */
  onError?: BackgroundErrorHandler;
}

/** The options, checked, with defaults filled in and old names read. */
export interface ResolvedOptions {
  readonly url?: string;
  readonly pool?: Pool;
  readonly closeClient: boolean;
  readonly tables: ResultTables;
  readonly createSchema: boolean;
  readonly maxConnections: number;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly connectionName: string;
  readonly resultExpiresMs: number;
  readonly expirySweepIntervalMs: number;
  readonly expiryBatchSize: number;
  readonly minPollIntervalMs: number;
  readonly maxPollIntervalMs: number;
  readonly notify: boolean;
  readonly storeBatchSize: number;
  readonly onError?: BackgroundErrorHandler;
}

const OWNER = 'PostgresResultBackend';
const check: OptionChecker = new OptionChecker(OWNER);
const positive = { min: 1, integer: true };
const nonNegative = { min: 0, integer: true };

/** Checks `options` (a bad one is a `ConfigError` naming it) and fills in the defaults. */
export function resolveOptions(options: PostgresResultBackendOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    check.fail('needs options with a url or a pool');
  }
  const url = renamedOption(OWNER, options, 'url', 'connectionString');
  const { pool } = options;
  if ((url === undefined) === (pool === undefined)) check.fail('needs exactly one of url and pool');
  if (url !== undefined) check.string('url', url, { nonEmpty: true });
  if (pool !== undefined && options.maxConnections !== undefined) {
    check.fail(
      'maxConnections applies only to a pool the backend creates; size your own pool instead',
    );
  }
  const numbers = check.numbers(
    {
      ...options,
      connectTimeoutMs: renamedOption(OWNER, options, 'connectTimeoutMs', 'connectionTimeoutMs'),
    },
    {
      maxConnections: { default: DEFAULT_MAX_CONNECTIONS, ...positive },
      connectTimeoutMs: { default: DEFAULT_CONNECTION_TIMEOUT_MS, ...positive },
      statementTimeoutMs: { default: DEFAULT_STATEMENT_TIMEOUT_MS, ...positive },
      resultExpiresMs: { default: DEFAULT_RESULT_EXPIRES_MS, ...nonNegative },
      expirySweepIntervalMs: { default: 0, ...nonNegative },
      expiryBatchSize: { default: DEFAULT_EXPIRY_BATCH_SIZE, ...positive },
      minPollIntervalMs: { default: DEFAULT_MIN_POLL_INTERVAL_MS, ...positive },
      maxPollIntervalMs: { default: DEFAULT_MAX_POLL_INTERVAL_MS, ...positive },
      storeBatchSize: { default: DEFAULT_STORE_BATCH_SIZE, ...positive },
    },
  );
  if (numbers.maxPollIntervalMs < numbers.minPollIntervalMs) {
    check.fail(
      `maxPollIntervalMs (${numbers.maxPollIntervalMs}) must be at least minPollIntervalMs (${numbers.minPollIntervalMs})`,
    );
  }
  return {
    ...numbers,
    url,
    pool,
    closeClient: pool ? (renamedOption(OWNER, options, 'closeClient', 'endPool') ?? false) : true,
    tables: validateTables({
      schema: options.schema ?? DEFAULT_SCHEMA,
      table: options.table ?? DEFAULT_TABLE,
      groupTable: options.groupTable ?? DEFAULT_GROUP_TABLE,
    }),
    createSchema: options.createSchema ?? true,
    connectionName: check.string(
      'connectionName',
      renamedOption(OWNER, options, 'connectionName', 'applicationName') ??
        DEFAULT_APPLICATION_NAME,
      { maxLength: 63 },
    ),
    notify: options.notify ?? true,
    onError: options.onError,
  };
}

/**
 * The settings of each connection: those of the given pool, or those the options ask for
 * (with `queryTimeoutMs`, the client-side bound on every query).
 */
export function clientConfigOf(settings: ResolvedOptions, queryTimeoutMs: number): ClientConfig {
  if (settings.pool) {
    const given = settings.pool.options;
    return { ...given, application_name: given.application_name ?? settings.connectionName };
  }
  return {
    connectionString: settings.url,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    application_name: settings.connectionName,
    statement_timeout: settings.statementTimeoutMs,
    query_timeout: queryTimeoutMs,
    keepAlive: true,
  };
}

/** The settings of the pool the backend creates when none is given. */
export function poolConfigOf(settings: ResolvedOptions, clientConfig: ClientConfig): PoolConfig {
  return {
    ...clientConfig,
    max: settings.maxConnections,
    idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
    // A script that only waited for a result can exit without calling close().
    allowExitOnIdle: true,
  };
}
