import { withCheckedOutClient } from './checked-out-client';
import type { Pool, PoolClient } from 'pg';
import { qualify, quoteIdentifier, renderTablesSql, type ResultTables } from './schema';

/**
 * Creates the backend's tables on first use. Several processes start at once in a deploy, and
 * concurrent `CREATE ... IF NOT EXISTS` can still fail on the catalog's unique indexes, so the
 * DDL runs in one transaction behind an advisory lock keyed by the schema: the first process
 * creates, the others wait for it and then find everything there.
 */
export class Migrator {
  constructor(
    private readonly pool: Pool,
    private readonly tables: ResultTables,
    private readonly queryTimeoutMs: number,
  ) {}

  /** Makes sure the tables exist. Returns true when this call created something. */
  async migrate(): Promise<boolean> {
    // A client that failed mid-transaction may be in any state: it is dropped, not reused.
    return withCheckedOutClient(this.pool, async (client) => {
      // The common case (tables exist) takes no lock and needs no CREATE privilege.
      if (await this.tablesExist(client)) return false;
      await this.query(client, 'BEGIN');
      try {
        await this.query(client, 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
          `conveyor-results:migrate:${this.tables.schema}`,
        ]);
        if (await this.tablesExist(client)) {
          await this.query(client, 'COMMIT');
          return false;
        }
        const schemaFound = await this.query(
          client,
          'SELECT 1 FROM pg_namespace WHERE nspname = $1',
          [this.tables.schema],
        );
        if (schemaFound.rowCount === 0) {
          await this.query(
            client,
            `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(this.tables.schema)}`,
          );
        }
        await this.query(client, renderTablesSql(this.tables));
        await this.query(client, 'COMMIT');
        return true;
      } catch (error) {
        await this.query(client, 'ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  private async tablesExist(client: PoolClient): Promise<boolean> {
    const q = qualify(this.tables);
    const found = await this.query<{ task: string | null; grp: string | null }>(
      client,
      'SELECT to_regclass($1)::text AS task, to_regclass($2)::text AS grp',
      [q.table, q.groupTable],
    );
    const row = found.rows[0];
    return row !== undefined && row.task !== null && row.grp !== null;
  }

  private query<R extends Record<string, unknown> = Record<string, unknown>>(
    client: PoolClient,
    text: string,
    values: unknown[] = [],
  ) {
    return client.query<R>({ text, values, query_timeout: this.queryTimeoutMs } as TimedQuery);
  }
}

/** pg reads `query_timeout` from a query's config too; @types/pg only declares it on the client. */
export interface TimedQuery {
  text: string;
  values?: unknown[];
  query_timeout?: number;
}
