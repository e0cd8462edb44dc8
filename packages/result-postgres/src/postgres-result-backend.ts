import {
  BackgroundErrors,
  type BackgroundErrorHandler,
  ConnectionError,
  SerializationError,
  isReadyState,
  type GroupMeta,
  type ResultBackend,
  type ResultMeta,
} from '@conveyor/core/plugin';
import { Client, Pool, type CustomTypesConfig, type QueryResultRow } from 'pg';
import {
  ErrorTranslator,
  isConnectionLost,
  isDataError,
  serialize,
  unstorableJson,
} from './connection-errors';
import {
  DEFAULT_EXPIRY_SWEEP_INTERVAL_MS,
  NOTIFY_PAYLOAD_BUDGET,
  POLL_CHUNK_SIZE,
  QUERY_TIMEOUT_GRACE_MS,
  STORE_BATCHES_IN_FLIGHT,
} from './defaults';
import { ExpirySweeper, type ExpirySweepResult } from './expiry-sweeper';
import { CELERY_JSON_TYPES } from './json-types';
import { Migrator, type TimedQuery } from './migrator';
import { NotificationListener, taskIdsOfPayload } from './notification-listener';
import {
  clientConfigOf,
  poolConfigOf,
  resolveOptions,
  type PostgresResultBackendOptions,
} from './postgres-result-backend-options';
import { ResultPoller } from './result-poller';
import { StoreBatcher } from './store-batcher';
import { notifyChannel, renderStatements, type ResultStatements } from './schema';

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
  private readonly channel?: string;
  private readonly queryTimeoutMs: number;
  private readonly resultExpiresMs: number;
  private readonly expirySweepIntervalMs: number;
  private readonly createSchema: boolean;
  private readonly errors: ErrorTranslator;
  private readonly backgroundErrors: BackgroundErrors;
  private readonly migrator: Migrator;
  private readonly poller: ResultPoller;
  private readonly listener?: NotificationListener;
  private readonly sweeper: ExpirySweeper;
  private readonly batcher: StoreBatcher;
  private readonly sql: ResultStatements;
  private readyPromise?: Promise<void>;
  /** Set by close(): no new stores; those accepted before are still written. */
  private closing = false;
  private closed = false;
  private readonly onPoolError = (error: Error): void => {
    // An idle pooled connection died (killed, network); pg-pool drops it and opens a new one on
    // demand. Without this listener the 'error' event would crash the process.
    this.report('idle connection', error);
  };

  constructor(options: PostgresResultBackendOptions) {
    const settings = resolveOptions(options);
    const { url, pool, tables } = settings;
    this.resultExpiresMs = settings.resultExpiresMs;
    this.expirySweepIntervalMs = settings.expirySweepIntervalMs;
    this.createSchema = settings.createSchema;
    this.queryTimeoutMs = settings.statementTimeoutMs + QUERY_TIMEOUT_GRACE_MS;
    this.endPoolOnClose = settings.closeClient;

    const clientConfig = clientConfigOf(settings, this.queryTimeoutMs);
    this.pool = pool ?? new Pool(poolConfigOf(settings, clientConfig));
    this.ownsPool = pool === undefined;
    this.pool.on('error', this.onPoolError);
    this.errors = ErrorTranslator.forConnection(url, clientConfig);
    this.backgroundErrors = new BackgroundErrors('postgres', settings.onError);

    this.channel = settings.notify ? notifyChannel(tables) : undefined;
    this.sql = renderStatements(tables, settings.notify, NOTIFY_PAYLOAD_BUDGET);
    this.migrator = new Migrator(this.pool, tables, this.queryTimeoutMs);
    this.sweeper = new ExpirySweeper({
      pool: this.pool,
      tables,
      resultExpiresMs: this.resultExpiresMs,
      batchSize: settings.expiryBatchSize,
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
      minIntervalMs: settings.minPollIntervalMs,
      maxIntervalMs: settings.maxPollIntervalMs,
      chunkSize: POLL_CHUNK_SIZE,
      onError: (error) => this.report('poll for results', error),
      onFirstWaiter: () => this.listener?.start(),
    });
    this.batcher = new StoreBatcher({
      maxBatchSize: settings.storeBatchSize,
      maxInFlight: STORE_BATCHES_IN_FLIGHT,
      writeMany: (batch) =>
        this.write(this.sql.storeMany, [
          batch.map((r) => r.taskId),
          batch.map((r) => r.status),
          batch.map((r) => r.document),
        ]),
      writeOne: (r) =>
        this.write(this.sql.store, [r.taskId, r.status, r.document], `result of task ${r.taskId}`),
      isRowError: isDataError,
    });
  }

  /**
   * Adds a listener for the failures this backend meets in the background, besides its `onError`
   * option: how a worker running on it reports them as its `worker-error` event. Returns a
   * function that removes the listener.
   */
  onBackgroundError(listener: BackgroundErrorHandler): () => void {
    return this.backgroundErrors.listen(listener);
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
    await this.batcher.store(meta.task_id, meta.status, document);
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

  /** Runs a store statement for `row` (a row, or arrays of a batch's rows). */
  private write(text: string, row: unknown[], subject?: string): Promise<unknown> {
    const values = [...row, this.resultExpiresMs, ...(this.channel ? [this.channel] : [])];
    return this.run('store result', () => this.query(text, values), subject);
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
      const unstorable = subject === undefined ? undefined : this.errors.unstorable(subject, error);
      throw unstorable ?? this.errors.translate(operation, error);
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
    if (!this.closed) this.backgroundErrors.report(this.errors.translate(operation, error));
  }
}
