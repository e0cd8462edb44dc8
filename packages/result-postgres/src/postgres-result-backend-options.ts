import type { ConnectionError } from '@conveyor/core';
import type { Pool } from 'pg';

/**
 * Options of {@link PostgresResultBackend}. Give exactly one of `connectionString` and `pool`.
 */
export interface PostgresResultBackendOptions {
  /**
   * A libpq-style URL, e.g. `postgresql://user:secret@db:5432/app`. The backend creates and owns
   * its pool. The password never appears in errors or logs.
   * @defaultValue none: either this or `pool` is required
   */
  connectionString?: string | undefined;
  /**
   * An existing pool to run on instead. Its own settings apply (size, timeouts): set
   * `statement_timeout` on it, since the backend can only bound its queries client-side here.
   * @defaultValue none: either this or `connectionString` is required
   */
  pool?: Pool;
  /**
   * With `pool`: whether `close()` ends that pool too. Off, because a pool passed in usually
   * serves the rest of the application.
   * @defaultValue false
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
   * Called with failures of background work (polling, listening, expiry sweeps), which is
   * retried on its own. Messages never contain the password.
   * @defaultValue a `console.warn`, at most once every ten seconds
   */
  onError?: (error: ConnectionError) => void;
}
