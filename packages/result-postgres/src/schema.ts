import { createHash } from 'node:crypto';
import { ConfigError } from '@conveyor/core/plugin';

/**
 * Where the backend's tables live, and the DDL that creates them. The DDL is rendered here, from
 * validated names only, so the same text serves the on-first-use migrator and `sql/schema.sql`.
 */
export interface ResultTables {
  /** Schema name, unquoted. */
  readonly schema: string;
  /** Task results table name, unquoted. */
  readonly table: string;
  /** Group metas table name, unquoted. */
  readonly groupTable: string;
}

/** Quoted, schema-qualified names, ready to splice into SQL. */
export interface QualifiedTables {
  readonly schema: string;
  readonly table: string;
  readonly groupTable: string;
  readonly tableIndex: string;
  readonly groupTableIndex: string;
}

// Plain identifiers only: they need no escaping beyond the double quotes we add, and they read
// the same in psql whether quoted or not (lower case is the common case, but any case works
// because we always quote).
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
// 63 bytes is PostgreSQL's NAMEDATALEN - 1; tables get a suffix for their index name, so keep
// room for it instead of letting PostgreSQL truncate (and possibly collide) silently.
const MAX_SCHEMA_LENGTH = 63;
const MAX_TABLE_LENGTH = 48;
const INDEX_SUFFIX = '_updated_at_idx';

/** The statuses after which a row never changes, as SQL literals. */
export const READY_STATUSES_SQL = `('SUCCESS', 'FAILURE', 'REVOKED')`;

/** Checks the names; a bad one is a {@link ConfigError} naming the option. */
export function validateTables(tables: ResultTables): ResultTables {
  check('schema', tables.schema, MAX_SCHEMA_LENGTH);
  check('table', tables.table, MAX_TABLE_LENGTH);
  check('groupTable', tables.groupTable, MAX_TABLE_LENGTH);
  if (/^pg_/i.test(tables.schema)) {
    throw new ConfigError(
      `schema '${tables.schema}' is invalid: names starting with pg_ are reserved`,
    );
  }
  if (tables.table === tables.groupTable) {
    throw new ConfigError(`table and groupTable must differ (both are '${tables.table}')`);
  }
  return tables;
}

function check(option: string, name: string, maxLength: number): void {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name.length > maxLength) {
    throw new ConfigError(
      `${option} ${JSON.stringify(name)} is not a valid identifier: use letters, digits and ` +
        `underscores, starting with a letter or underscore, at most ${maxLength} characters`,
    );
  }
}

/** Double-quotes an identifier already checked by {@link validateTables}. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The quoted names used in SQL. */
export function qualify(tables: ResultTables): QualifiedTables {
  const schema = quoteIdentifier(tables.schema);
  return {
    schema,
    table: `${schema}.${quoteIdentifier(tables.table)}`,
    groupTable: `${schema}.${quoteIdentifier(tables.groupTable)}`,
    tableIndex: quoteIdentifier(tables.table + INDEX_SUFFIX),
    groupTableIndex: quoteIdentifier(tables.groupTable + INDEX_SUFFIX),
  };
}

/**
 * The NOTIFY channel of a results table. Derived from a hash so that any schema and table name
 * fits PostgreSQL's 63-byte channel limit, and every process using the table agrees on it.
 */
export function notifyChannel(tables: ResultTables): string {
  const digest = createHash('sha256')
    .update(`${tables.schema}.${tables.table}`)
    .digest('hex')
    .slice(0, 16);
  return `conveyor_results_${digest}`;
}

/**
 * The tables and indexes, idempotent (IF NOT EXISTS). Does not create the schema itself: the
 * migrator does that only when it is missing, since CREATE SCHEMA needs a privilege that a
 * results user often lacks even when the schema exists.
 */
export function renderTablesSql(tables: ResultTables): string {
  const q = qualify(tables);
  return `-- One row per task: the Celery result meta document, as stored by every Conveyor backend.
CREATE TABLE IF NOT EXISTS ${q.table} (
  task_id    text        PRIMARY KEY,
  -- Copy of meta->>'status', so the final-state guard and the poll need not read the document.
  status     text        NOT NULL,
  meta       jsonb       NOT NULL,
  -- Time of the last write, by the database's clock: what expiry compares with.
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ${q.tableIndex} ON ${q.table} (updated_at);

-- One row per group (Celery's taskset meta).
CREATE TABLE IF NOT EXISTS ${q.groupTable} (
  group_id   text        PRIMARY KEY,
  meta       jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ${q.groupTableIndex} ON ${q.groupTable} (updated_at);
`;
}

/** The whole schema, as shipped in `sql/schema.sql`. */
export function renderSchemaSql(tables: ResultTables): string {
  return `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(tables.schema)};\n\n${renderTablesSql(tables)}`;
}
