import {
  ConfigError,
  ConnectionError,
  SerializationError,
  isReadyState,
  parseCeleryJson,
  stringifyCeleryJson,
  type GroupMeta,
  type ResultBackend,
  type ResultMeta,
} from '@conveyor/core';
import {
  Client,
  Pool,
  types as pgTypes,
  type ClientConfig,
  type CustomTypesConfig,
  type PoolConfig,
  type QueryResultRow,
} from 'pg';
import { ErrorTranslator, describeTarget, isConnectionLost, passwordOf } from './connection-errors';
import {
  DEFAULT_APPLICATION_NAME,
  DEFAULT_CONNECTION_TIMEOUT_MS,
  DEFAULT_EXPIRY_BATCH_SIZE,
  DEFAULT_EXPIRY_SWEEP_INTERVAL_MS,
  DEFAULT_GROUP_TABLE,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_POLL_INTERVAL_MS,
  DEFAULT_MIN_POLL_INTERVAL_MS,
  DEFAULT_RESULT_EXPIRES_MS,
  DEFAULT_SCHEMA,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  DEFAULT_STORE_BATCH_SIZE,
  DEFAULT_TABLE,
  ERROR_REPORT_INTERVAL_MS,
  NOTIFY_PAYLOAD_BUDGET,
  POLL_CHUNK_SIZE,
  POOL_IDLE_TIMEOUT_MS,
  QUERY_TIMEOUT_GRACE_MS,
  STORE_BATCHES_IN_FLIGHT,
} from './defaults';
import { ExpirySweeper, type ExpirySweepResult } from './expiry-sweeper';
import { Migrator, type TimedQuery } from './migrator';
import { NotificationListener, taskIdsOfPayload } from './notification-listener';
import type { PostgresResultBackendOptions } from './postgres-result-backend-options';
import { ResultPoller } from './result-poller';
import { StoreBatcher, type StoreRequest } from './store-batcher';
import {
  READY_STATUSES_SQL,
  notifyChannel,
  qualify,
  validateTables,
  type ResultTables,
} from './schema';

/** `updated_at` is recent enough for the row to count: `$n` is the expiry in ms, 0 = never. */
const fresh = (n: number): string =>
  `($${n}::double precision <= 0 OR updated_at >= now() - $${n}::double precision * interval '1 millisecond')`;

/**
 * Result backend on PostgreSQL. Each task's Celery meta document is one JSONB row keyed by task
 * id; writes are upserts that never replace a final state, batched into multi-row statements
 * when made close together; waits are served by one poller per instance (which looks up notified
 * ids at once, and all pending ids on a backed-off timer); old rows are deleted by a batched sweep.
 */
export class PostgresResultBackend implements ResultBackend {
  private readonly pool: Pool;
  private readonly endPoolOnClose: boolean;
  private readonly ownsPool: boolean;
  private readonly tables: ResultTables;
  private readonly channel?: string;
  private readonly queryTimeoutMs: number;
  private readonly resultExpiresMs: number;
  private readonly expirySweepIntervalMs: number;
  private readonly createSchema: boolean;
  private readonly errors: ErrorTranslator;
  private readonly migrator: Migrator;
  private readonly poller: ResultPoller;
  private readonly listener?: NotificationListener;
  private readonly sweeper: ExpirySweeper;
  private readonly batcher: StoreBatcher;
  private readonly reportError: (error: ConnectionError) => void;
  private readonly sql: {
    store: string;
    storeMany: string;
    get: string;
    getMany: string;
    poll: string;
    forget: string;
    storeGroup: string;
    getGroup: string;
    forgetGroup: string;
  };
  private readyPromise?: Promise<void>;
  /** Set by close(): no new stores; those accepted before are still written. */
  private closing = false;
  private closed = false;
  private lastReportAt = 0;
  private readonly onPoolError = (error: Error): void => {
    // An idle pooled connection died (killed, network); pg-pool drops it and opens a new one on
    // demand. Without this listener the 'error' event would crash the process.
    this.report('idle connection', error);
  };

  constructor(options: PostgresResultBackendOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ConfigError(
        'PostgresResultBackend needs options with a connectionString or a pool',
      );
    }
    const { connectionString, pool } = options;
    if ((connectionString === undefined) === (pool === undefined)) {
      throw new ConfigError('PostgresResultBackend needs exactly one of connectionString and pool');
    }
    if (
      connectionString !== undefined &&
      (typeof connectionString !== 'string' || connectionString === '')
    ) {
      throw new ConfigError('connectionString must be a non-empty string');
    }
    if (pool !== undefined && options.maxConnections !== undefined) {
      throw new ConfigError(
        'maxConnections applies only to a pool the backend creates; size your own pool instead',
      );
    }
    const maxConnections = positiveInteger(
      'maxConnections',
      options.maxConnections,
      DEFAULT_MAX_CONNECTIONS,
    );
    const connectionTimeoutMs = positiveInteger(
      'connectionTimeoutMs',
      options.connectionTimeoutMs,
      DEFAULT_CONNECTION_TIMEOUT_MS,
    );
    const statementTimeoutMs = positiveInteger(
      'statementTimeoutMs',
      options.statementTimeoutMs,
      DEFAULT_STATEMENT_TIMEOUT_MS,
    );
    this.resultExpiresMs = nonNegativeInteger(
      'resultExpiresMs',
      options.resultExpiresMs,
      DEFAULT_RESULT_EXPIRES_MS,
    );
    this.expirySweepIntervalMs = nonNegativeInteger(
      'expirySweepIntervalMs',
      options.expirySweepIntervalMs,
      0,
    );
    const expiryBatchSize = positiveInteger(
      'expiryBatchSize',
      options.expiryBatchSize,
      DEFAULT_EXPIRY_BATCH_SIZE,
    );
    const minPollIntervalMs = positiveInteger(
      'minPollIntervalMs',
      options.minPollIntervalMs,
      DEFAULT_MIN_POLL_INTERVAL_MS,
    );
    const maxPollIntervalMs = positiveInteger(
      'maxPollIntervalMs',
      options.maxPollIntervalMs,
      DEFAULT_MAX_POLL_INTERVAL_MS,
    );
    if (maxPollIntervalMs < minPollIntervalMs) {
      throw new ConfigError(
        `maxPollIntervalMs (${maxPollIntervalMs}) must be at least minPollIntervalMs (${minPollIntervalMs})`,
      );
    }
    const storeBatchSize = positiveInteger(
      'storeBatchSize',
      options.storeBatchSize,
      DEFAULT_STORE_BATCH_SIZE,
    );
    const applicationName = options.applicationName ?? DEFAULT_APPLICATION_NAME;
    if (typeof applicationName !== 'string' || applicationName.length > 63) {
      throw new ConfigError('applicationName must be a string of at most 63 characters');
    }
    this.tables = validateTables({
      schema: options.schema ?? DEFAULT_SCHEMA,
      table: options.table ?? DEFAULT_TABLE,
      groupTable: options.groupTable ?? DEFAULT_GROUP_TABLE,
    });
    this.createSchema = options.createSchema ?? true;
    this.queryTimeoutMs = statementTimeoutMs + QUERY_TIMEOUT_GRACE_MS;

    let clientConfig: ClientConfig;
    if (pool) {
      this.pool = pool;
      this.ownsPool = false;
      this.endPoolOnClose = options.endPool ?? false;
      clientConfig = {
        ...pool.options,
        application_name: pool.options.application_name ?? applicationName,
      };
    } else {
      clientConfig = {
        connectionString,
        connectionTimeoutMillis: connectionTimeoutMs,
        application_name: applicationName,
        statement_timeout: statementTimeoutMs,
        query_timeout: this.queryTimeoutMs,
        keepAlive: true,
      };
      const poolConfig: PoolConfig = {
        ...clientConfig,
        max: maxConnections,
        idleTimeoutMillis: POOL_IDLE_TIMEOUT_MS,
        // A script that only waited for a result can exit without calling close().
        allowExitOnIdle: true,
      };
      this.pool = new Pool(poolConfig);
      this.ownsPool = true;
      this.endPoolOnClose = true;
    }
    this.pool.on('error', this.onPoolError);

    const passwordOption =
      typeof clientConfig.password === 'string' ? clientConfig.password : undefined;
    const target = describeTarget(connectionString ?? clientConfig.connectionString, {
      host: clientConfig.host,
      port: clientConfig.port,
      database: clientConfig.database,
    });
    this.errors = new ErrorTranslator(target, [
      passwordOption,
      passwordOf(connectionString),
      passwordOf(clientConfig.connectionString),
    ]);
    this.reportError = options.onError ?? this.warnThrottled;

    const q = qualify(this.tables);
    const notify = options.notify ?? true;
    this.channel = notify ? notifyChannel(this.tables) : undefined;
    const upsert = (
      rows: string,
    ): string => `INSERT INTO ${q.table} AS r (task_id, status, meta, updated_at)
      SELECT i.task_id, i.status, i.meta::jsonb, now() FROM ${rows}
      ON CONFLICT (task_id) DO UPDATE
        SET status = EXCLUDED.status, meta = EXCLUDED.meta, updated_at = EXCLUDED.updated_at
        -- A final state is kept (a redelivered task's late STARTED must not hide it), unless the
        -- row has expired and only waits for the sweeper.
        WHERE r.status NOT IN ${READY_STATUSES_SQL}
           OR ($4::double precision > 0
               AND r.updated_at < now() - $4::double precision * interval '1 millisecond')`;
    const one = upsert(`(SELECT $1::text, $2::text, $3::text) AS i(task_id, status, meta)`);
    const many = upsert(`unnest($1::text[], $2::text[], $3::text[]) AS i(task_id, status, meta)`);
    this.sql = {
      // One row notifies with its task id as the payload.
      store: notify
        ? `WITH stored AS (${one} RETURNING r.task_id, r.status)
           SELECT pg_notify($5, task_id) FROM stored WHERE status IN ${READY_STATUSES_SQL}`
        : one,
      // A batch notifies with JSON arrays of task ids, cut to fit the payload limit.
      storeMany: notify
        ? `WITH stored AS (${many} RETURNING r.task_id, r.status),
           ready AS (
             SELECT task_id,
                    sum(octet_length(to_json(task_id)::text) + 2) OVER (ORDER BY task_id) AS upto
               FROM stored WHERE status IN ${READY_STATUSES_SQL})
           SELECT pg_notify($5, json_agg(task_id)::text) FROM ready
            GROUP BY (upto - 1) / ${NOTIFY_PAYLOAD_BUDGET}`
        : many,
      get: `SELECT meta FROM ${q.table} WHERE task_id = $1 AND ${fresh(2)}`,
      getMany: `SELECT task_id, meta FROM ${q.table}
                 WHERE task_id IN (SELECT unnest($1::text[])) AND ${fresh(2)}`,
      poll: `SELECT task_id, meta FROM ${q.table}
              WHERE task_id = ANY($1::text[]) AND status IN ${READY_STATUSES_SQL} AND ${fresh(2)}`,
      forget: `DELETE FROM ${q.table} WHERE task_id = $1`,
      storeGroup: `INSERT INTO ${q.groupTable} AS g (group_id, meta, updated_at)
        VALUES ($1, $2::jsonb, now())
        ON CONFLICT (group_id) DO UPDATE SET meta = EXCLUDED.meta, updated_at = EXCLUDED.updated_at`,
      getGroup: `SELECT meta FROM ${q.groupTable} WHERE group_id = $1 AND ${fresh(2)}`,
      forgetGroup: `DELETE FROM ${q.groupTable} WHERE group_id = $1`,
    };

    this.migrator = new Migrator(this.pool, this.tables, this.queryTimeoutMs);
    this.sweeper = new ExpirySweeper({
      pool: this.pool,
      tables: this.tables,
      resultExpiresMs: this.resultExpiresMs,
      batchSize: expiryBatchSize,
      queryTimeoutMs: this.queryTimeoutMs,
    });
    if (this.channel) {
      this.listener = new NotificationListener({
        createClient: () => new Client(clientConfig),
        channel: this.channel,
        onNotification: (payload) => {
          for (const taskId of taskIdsOfPayload(payload)) this.poller.notified(taskId);
        },
        // Anything stored while the listener was away is found by the full poll this starts.
        onListening: () => this.poller.setListening(true),
        onLost: () => this.poller.setListening(false),
        onError: (error) => this.report('listen for results', error),
      });
    }
    this.poller = new ResultPoller({
      fetchReady: (ids) => this.fetchReady(ids),
      minIntervalMs: minPollIntervalMs,
      maxIntervalMs: maxPollIntervalMs,
      chunkSize: POLL_CHUNK_SIZE,
      onError: (error) => this.report('poll for results', error),
      onFirstWaiter: () => this.listener?.start(),
    });
    this.batcher = new StoreBatcher({
      maxBatchSize: storeBatchSize,
      maxInFlight: STORE_BATCHES_IN_FLIGHT,
      execute: (batch) => this.storeBatch(batch),
    });
  }

  /** Creates the tables if needed (see `createSchema`). Optional: every operation does it first. */
  async connect(): Promise<void> {
    await this.run('connect', async () => undefined);
  }

  /**
   * Upserts the meta (never over a final state). Resolves once committed: stores made close
   * together share one statement (see `storeBatchSize`), but each succeeds or fails on its own.
   */
  async store(meta: ResultMeta): Promise<void> {
    const subject = `result of task ${meta.task_id}`;
    const document = serialize(meta, subject);
    const unstorable = unstorableJson(document);
    if (unstorable) throw new SerializationError(subject, unstorable);
    if (this.closing) throw new ConnectionError('PostgreSQL result backend is closed');
    await new Promise<void>((resolve, reject) =>
      this.batcher.add({
        taskId: meta.task_id,
        status: meta.status,
        document,
        resolve,
        reject,
      }),
    );
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    const res = await this.run('read result', () =>
      this.query<{ meta: ResultMeta }>(this.sql.get, [taskId, this.resultExpiresMs]),
    );
    return res.rows[0]?.meta;
  }

  /** The metas of many tasks (undefined where none is stored), in one query per 10,000 ids. */
  async getMany(taskIds: readonly string[]): Promise<Array<ResultMeta | undefined>> {
    const unique = [...new Set(taskIds)];
    const found = new Map<string, ResultMeta>();
    for (let start = 0; start < unique.length; start += POLL_CHUNK_SIZE) {
      const chunk = unique.slice(start, start + POLL_CHUNK_SIZE);
      const res = await this.run(`read of ${chunk.length} results`, () =>
        this.query<{ task_id: string; meta: ResultMeta }>(this.sql.getMany, [
          chunk,
          this.resultExpiresMs,
        ]),
      );
      for (const row of res.rows) found.set(row.task_id, row.meta);
    }
    // A task asked for twice gets two copies, as from two reads.
    const given = new Set<string>();
    return taskIds.map((id) => {
      const meta = found.get(id);
      if (meta === undefined) return undefined;
      if (given.has(id)) return structuredClone(meta);
      given.add(id);
      return meta;
    });
  }

  async waitForReady(taskId: string, timeoutMs: number): Promise<ResultMeta | undefined> {
    if (this.closed) return undefined;
    if (!(timeoutMs > 0)) {
      // No time to wait: one look, and no failure either (waiting never rejects).
      const meta = await this.get(taskId).catch(() => undefined);
      return meta && isReadyState(meta.status) ? meta : undefined;
    }
    return this.poller.wait(taskId, timeoutMs);
  }

  async forget(taskId: string): Promise<void> {
    await this.run('forget result', () => this.query(this.sql.forget, [taskId]));
  }

  async storeGroup(meta: GroupMeta): Promise<void> {
    const document = serialize(meta, `group ${meta.group_id}`);
    await this.run(
      'store group',
      () => this.query(this.sql.storeGroup, [meta.group_id, document]),
      meta.group_id,
    );
  }

  async getGroup(groupId: string): Promise<GroupMeta | undefined> {
    const res = await this.run('read group', () =>
      this.query<{ meta: GroupMeta }>(this.sql.getGroup, [groupId, this.resultExpiresMs]),
    );
    return res.rows[0]?.meta;
  }

  async forgetGroup(groupId: string): Promise<void> {
    await this.run('forget group', () => this.query(this.sql.forgetGroup, [groupId]));
  }

  /**
   * Deletes expired results and groups now, in batches. Returns `ran: false` without waiting
   * when another process (or instance) is sweeping the same table, or when expiry is off.
   * Safe to call from every worker on any schedule.
   */
  async sweepExpired(): Promise<ExpirySweepResult> {
    return this.run('sweep expired results', () => this.sweeper.sweep());
  }

  /**
   * Sweeps every `intervalMs` from now on (replacing any earlier schedule, including the one
   * `expirySweepIntervalMs` starts). For a worker that wants to own the schedule.
   */
  startExpirySweeper(
    intervalMs: number = this.expirySweepIntervalMs || DEFAULT_EXPIRY_SWEEP_INTERVAL_MS,
  ): void {
    if (this.closed) return;
    this.sweeper.start(intervalMs, (error) => this.report('sweep expired results', error));
  }

  /** Stops the periodic expiry sweep. */
  stopExpirySweeper(): void {
    this.sweeper.stop();
  }

  /** `postgresql://host:port/database`, never the user or password. */
  describe(): string {
    return `postgresql://${this.errors.target}`;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Stores accepted before close() are still written (or rejected) before the pool ends.
    await this.batcher.drain();
    this.closed = true;
    this.poller.close();
    this.sweeper.stop();
    await this.listener?.stop();
    if (this.endPoolOnClose) {
      await this.pool.end();
    }
    // Left on a pool we own so errors of connections still closing cannot crash the process.
    if (!this.ownsPool) this.pool.off('error', this.onPoolError);
  }

  /** Writes a batch in one statement; on a failure due to its data, row by row. */
  private async storeBatch(batch: StoreRequest[]): Promise<void> {
    if (batch.length === 1) {
      await this.storeOne(batch[0]!);
      return;
    }
    // One order for every batch: concurrent batches from several processes that share ids (a
    // redelivered task) lock their rows in the same order instead of deadlocking.
    batch.sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
    const values: unknown[] = [
      batch.map((r) => r.taskId),
      batch.map((r) => r.status),
      batch.map((r) => r.document),
      this.resultExpiresMs,
    ];
    if (this.channel) values.push(this.channel);
    let rowError = false;
    try {
      await this.run('store result', async () => {
        try {
          return await this.query(this.sql.storeMany, values);
        } catch (error) {
          rowError = isDataError(error);
          throw error;
        }
      });
    } catch (error) {
      if (rowError) {
        // Some row is refused (a value jsonb cannot hold, an id too long to notify, a
        // deadlock...): each row again on its own, so only the bad one fails.
        await Promise.all(batch.map((request) => this.storeOne(request)));
        return;
      }
      // The database is unreachable or not answering: the rows queued behind this batch
      // would only wait for the same failure, so they fail now too (the caller retries).
      for (const request of batch) request.reject(error);
      this.batcher.rejectQueued(error);
      return;
    }
    for (const request of batch) request.resolve();
  }

  private async storeOne(request: StoreRequest): Promise<void> {
    const values: unknown[] = [
      request.taskId,
      request.status,
      request.document,
      this.resultExpiresMs,
    ];
    if (this.channel) values.push(this.channel);
    try {
      await this.run(
        'store result',
        () => this.query(this.sql.store, values),
        `result of task ${request.taskId}`,
      );
      request.resolve();
    } catch (error) {
      request.reject(error);
    }
  }

  private async fetchReady(taskIds: string[]): Promise<Map<string, ResultMeta>> {
    const res = await this.run('poll for results', () =>
      this.query<{ task_id: string; meta: ResultMeta }>(this.sql.poll, [
        taskIds,
        this.resultExpiresMs,
      ]),
    );
    return new Map(res.rows.map((row) => [row.task_id, row.meta]));
  }

  /** Creates the tables once per instance (retried after a failure), then starts the sweeper. */
  private ready(): Promise<void> {
    if (!this.readyPromise) {
      const created = this.createSchema ? this.migrator.migrate() : Promise.resolve(false);
      this.readyPromise = created.then(
        () => {
          if (this.expirySweepIntervalMs > 0 && !this.closed && !this.sweeper.running) {
            this.startExpirySweeper(this.expirySweepIntervalMs);
          }
        },
        (error: unknown) => {
          this.readyPromise = undefined;
          throw error;
        },
      );
    }
    return this.readyPromise;
  }

  /**
   * Runs an operation after {@link ready}, retrying it once on a fresh connection if the
   * connection died under it (every operation here is idempotent), and translating failures.
   */
  private async run<T>(operation: string, work: () => Promise<T>, subject?: string): Promise<T> {
    const attempt = async (): Promise<T> => {
      if (this.closed) throw new ConnectionError('PostgreSQL result backend is closed');
      await this.ready();
      return work();
    };
    try {
      try {
        return await attempt();
      } catch (error) {
        if (!isConnectionLost(error) || this.closed) throw error;
        return await attempt();
      }
    } catch (error) {
      if (subject !== undefined && isUnstorableJson(error)) {
        throw new SerializationError(subject, this.errors.redact(String((error as Error).message)));
      }
      throw this.errors.translate(operation, error);
    }
  }

  private query<R extends QueryResultRow>(text: string, values: unknown[]) {
    const config: TimedQuery & { types: CustomTypesConfig } = {
      text,
      values,
      query_timeout: this.queryTimeoutMs,
      types: CELERY_JSON_TYPES,
    };
    return this.pool.query<R>(config as { text: string; values: unknown[] });
  }

  private report(operation: string, error: unknown): void {
    if (this.closed) return;
    const translated = this.errors.translate(operation, error);
    try {
      this.reportError(translated);
    } catch {
      // A failing error hook must not stop polling or sweeping.
    }
  }

  private readonly warnThrottled = (error: ConnectionError): void => {
    const now = Date.now();
    if (now - this.lastReportAt < ERROR_REPORT_INTERVAL_MS) return;
    this.lastReportAt = now;
    console.warn(`[conveyor] ${error.message} (retrying)`);
  };
}

function serialize(meta: object, subject: string): string {
  try {
    return stringifyCeleryJson(meta);
  } catch (error) {
    throw new SerializationError(subject, error instanceof Error ? error.message : String(error));
  }
}

/**
 * Why jsonb would refuse this JSON text, if it would: `JSON.stringify` writes U+0000 and lone
 * surrogates as `\u` escapes (an odd run of backslashes before the `u`), which jsonb rejects.
 * Checked before sending, so that such a row never fails the batch it would share.
 */
function unstorableJson(document: string): string | undefined {
  if (!document.includes('\\u')) return undefined;
  const match = /(?<!\\)(?:\\\\)*\\u(0000|d[89a-f][0-9a-f]{2})/i.exec(document);
  if (!match) return undefined;
  return match[1] === '0000'
    ? 'jsonb cannot hold U+0000 in a string'
    : `jsonb cannot hold a lone surrogate (\\u${match[1]!.toLowerCase()}) in a string`;
}

/**
 * A failure caused by the statement's data rather than by the connection: data exceptions
 * (22: values jsonb refuses, payload too long), integrity (23), cardinality (21), serialization
 * and deadlock (40), program limits (54). A batch failing so is retried row by row.
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(21|22|23|40|54)/.test(code) && code.length === 5;
}

/** PostgreSQL's jsonb refuses some JSON that JavaScript writes: `\u0000`, lone surrogates. */
function isUnstorableJson(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  const message = String((error as { message?: unknown } | null)?.message ?? '');
  return code === '22P05' || (code === '22P02' && /json|unicode/i.test(message));
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigError(`${name} must be a positive integer (got ${String(value)})`);
  }
  return value;
}

function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigError(`${name} must be an integer of 0 or more (got ${String(value)})`);
  }
  return value;
}

/** OIDs of PostgreSQL's json and jsonb types. */
const JSON_OIDS = new Set([114, 3802]);

/**
 * Type parsers that read json and jsonb as Celery's JSON (`parseCeleryJson`): an integer beyond
 * 2^53 comes back exact, as a BigInt, where pg's own JSON.parse would round it.
 */
const CELERY_JSON_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    JSON_OIDS.has(oid) && format !== 'binary'
      ? parseCeleryJson
      : pgTypes.getTypeParser(oid, format ?? 'text')) as CustomTypesConfig['getTypeParser'],
};
