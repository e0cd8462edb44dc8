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

/** The statements the backend runs on its tables, with their parameters in order. */
export interface ResultStatements {
  /** `$1` task id, `$2` status, `$3` meta JSON, `$4` expiry ms, `$5` NOTIFY channel (with notify). */
  readonly store: string;
  /** As `store`, with `$1`-`$3` arrays of one batch's rows. */
  readonly storeMany: string;
  /** `$1` task id, `$2` expiry ms. */
  readonly get: string;
  /** `$1` task ids, `$2` expiry ms. */
  readonly getMany: string;
  /** `$1` task ids, `$2` expiry ms: only rows in a final state. */
  readonly poll: string;
  /** `$1` task id. */
  readonly forget: string;
  /** `$1` group id, `$2` meta JSON. */
  readonly storeGroup: string;
  /** `$1` group id, `$2` expiry ms. */
  readonly getGroup: string;
  /** `$1` group id. */
  readonly forgetGroup: string;
}

/** `updated_at` is recent enough for the row to count: `$n` is the expiry in ms, 0 = never. */
const fresh = (n: number): string =>
  `($${n}::double precision <= 0 OR updated_at >= now() - $${n}::double precision * interval '1 millisecond')`;

/**
 * The backend's statements for `tables`. With `notify`, stores of a final state also send a
 * NOTIFY on the table's channel: one row with its task id as the payload, a batch with JSON
 * arrays of task ids cut to fit the payload limit (`notifyPayloadBudget` bytes each).
 */
export function renderStatements(
  tables: ResultTables,
  notify: boolean,
  notifyPayloadBudget: number,
): ResultStatements {
  const q = qualify(tables);
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
  return {
    store: notify
      ? `WITH stored AS (${one} RETURNING r.task_id, r.status)
           SELECT pg_notify($5, task_id) FROM stored WHERE status IN ${READY_STATUSES_SQL}`
      : one,
    storeMany: notify
      ? `WITH stored AS (${many} RETURNING r.task_id, r.status),
           ready AS (
             SELECT task_id,
                    sum(octet_length(to_json(task_id)::text) + 2) OVER (ORDER BY task_id) AS upto
               FROM stored WHERE status IN ${READY_STATUSES_SQL})
           SELECT pg_notify($5, json_agg(task_id)::text) FROM ready
            GROUP BY (upto - 1) / ${notifyPayloadBudget}`
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
}
