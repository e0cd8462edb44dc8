import { withCheckedOutClient } from './checked-out-client';
import type { Pool, PoolClient } from 'pg';
import type { TimedQuery } from './migrator';
import { qualify, type ResultTables } from './schema';

/** What one expiry sweep did. */
export interface ExpirySweepResult {
  /** False when another process (or this one) was already sweeping, or expiry is off. */
  ran: boolean;
  /** Task result rows deleted. */
  deletedResults: number;
  /** Group rows deleted. */
  deletedGroups: number;
  /** DELETE statements run. */
  batches: number;
}

/** Settings of an {@link ExpirySweeper}. */
export interface ExpirySweeperOptions {
  pool: Pool;
  tables: ResultTables;
  resultExpiresMs: number;
  batchSize: number;
  queryTimeoutMs: number;
}

/**
 * Deletes results older than `resultExpiresMs` in bounded batches. Each batch is its own short
 * statement that locks at most `batchSize` rows and skips rows a writer holds, so the sweep never
 * blocks stores for long. A session advisory lock (tried, never waited for) keeps it to one sweeper
 * at a time across every process sharing the table.
 */
export class ExpirySweeper {
  private readonly lockKey: string;
  private readonly deleteResults: string;
  private readonly deleteGroups: string;
  private timer?: NodeJS.Timeout;
  /** Bumped by start/stop, so a sweep still running from an old schedule does not resume it. */
  private schedule = 0;

  constructor(private readonly options: ExpirySweeperOptions) {
    const q = qualify(options.tables);
    this.lockKey = `conveyor-results:expiry:${options.tables.schema}.${options.tables.table}`;
    // ORDER BY the write time walks the index from the oldest row and stops at LIMIT; the outer
    // DELETE re-checks the age on the row it locked, so a row refreshed meanwhile survives.
    const batchDelete = (table: string, key: string): string =>
      `DELETE FROM ${table} WHERE ${key} IN (
         SELECT ${key} FROM ${table}
          WHERE updated_at < now() - $1::double precision * interval '1 millisecond'
          ORDER BY updated_at LIMIT $2
          FOR UPDATE SKIP LOCKED)
        AND updated_at < now() - $1::double precision * interval '1 millisecond'`;
    this.deleteResults = batchDelete(q.table, 'task_id');
    this.deleteGroups = batchDelete(q.groupTable, 'group_id');
  }

  /** Runs one sweep, unless one is running somewhere already. */
  async sweep(): Promise<ExpirySweepResult> {
    const result: ExpirySweepResult = {
      ran: false,
      deletedResults: 0,
      deletedGroups: 0,
      batches: 0,
    };
    if (this.options.resultExpiresMs <= 0) return result;
    // Dropping the connection on a failure also releases the session lock if the unlock did
    // not run.
    return withCheckedOutClient(this.options.pool, async (client) => {
      const locked = await this.query<{ locked: boolean }>(
        client,
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [this.lockKey],
      );
      if (!locked.rows[0]?.locked) return result;
      result.ran = true;
      try {
        result.deletedResults = await this.drain(client, this.deleteResults, result);
        result.deletedGroups = await this.drain(client, this.deleteGroups, result);
      } finally {
        await this.query(client, 'SELECT pg_advisory_unlock(hashtextextended($1, 0))', [
          this.lockKey,
        ]);
      }
      return result;
    });
  }

  /** Sweeps every `intervalMs` (with a little jitter, so processes do not all try at once). */
  start(intervalMs: number, onError: (error: unknown) => void): void {
    this.stop();
    if (intervalMs <= 0 || this.options.resultExpiresMs <= 0) return;
    const schedule = this.schedule;
    const next = (): void => {
      const delay = intervalMs * (0.9 + Math.random() * 0.2);
      this.timer = setTimeout(() => {
        this.sweep()
          .catch(onError)
          .finally(() => {
            if (this.schedule === schedule) next();
          });
      }, delay);
      // A sweep schedule alone must not keep a process alive.
      this.timer.unref();
    };
    next();
  }

  /** Stops the periodic sweep (a running sweep finishes its current batch loop). */
  stop(): void {
    this.schedule += 1;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  private async drain(client: PoolClient, sql: string, result: ExpirySweepResult): Promise<number> {
    let deleted = 0;
    for (;;) {
      const res = await this.query(client, sql, [
        this.options.resultExpiresMs,
        this.options.batchSize,
      ]);
      result.batches += 1;
      const count = res.rowCount ?? 0;
      deleted += count;
      if (count < this.options.batchSize) return deleted;
    }
  }

  private query<R extends Record<string, unknown> = Record<string, unknown>>(
    client: PoolClient,
    text: string,
    values: unknown[],
  ) {
    const config: TimedQuery = { text, values, query_timeout: this.options.queryTimeoutMs };
    return client.query<R>(config as { text: string; values: unknown[] });
  }
}
