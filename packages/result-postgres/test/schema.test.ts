import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@conveyor/core';
import { Pool } from 'pg';
import { PostgresResultBackend } from '../src';
import { renderSchemaSql } from '../src/schema';
import { DATABASE_URL } from '../../../test/support/services';
import {
  dropSchema,
  makeBackend,
  sql,
  success,
  uniqueSchema,
} from '../../../test/support/postgres';

const schemas: string[] = [];
function newSchema(): string {
  const schema = uniqueSchema();
  schemas.push(schema);
  return schema;
}
afterAll(async () => {
  for (const schema of schemas) await dropSchema(schema);
});

async function tablesIn(schema: string): Promise<string[]> {
  const rows = await sql<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 ORDER BY c.relname`,
    [schema],
  );
  return rows.map((r) => r.relname);
}

describe('schema creation', () => {
  it('creates schema, tables and indexes on first use', async () => {
    const schema = newSchema();
    const b = makeBackend(schema);
    try {
      await b.connect();
      expect(await tablesIn(schema)).toEqual([
        'conveyor_group_results',
        'conveyor_group_results_pkey',
        'conveyor_group_results_updated_at_idx',
        'conveyor_task_results',
        'conveyor_task_results_pkey',
        'conveyor_task_results_updated_at_idx',
      ]);
    } finally {
      await b.close();
    }
  });

  it('lets ten backends start at once against an empty schema: one set of tables, no error', async () => {
    const schema = newSchema();
    const backends = Array.from({ length: 10 }, () => makeBackend(schema, { maxConnections: 1 }));
    try {
      const ids = backends.map(() => randomUUID());
      // Each one's first operation runs the migrator; all of them race for it.
      await Promise.all(backends.map((b, i) => b.store(success(ids[i]!, i))));
      expect(
        (await tablesIn(schema)).filter(
          (name) => !name.endsWith('_pkey') && !name.endsWith('_idx'),
        ),
      ).toEqual(['conveyor_group_results', 'conveyor_task_results']);
      const rows = await sql<{ n: string }>(
        `SELECT count(*) AS n FROM "${schema}".conveyor_task_results`,
      );
      expect(rows[0]!.n).toBe('10');
    } finally {
      await Promise.all(backends.map((b) => b.close()));
    }
  });

  it('creates nothing when createSchema is off, and works on tables made from sql/schema.sql', async () => {
    const schema = newSchema();
    const b = makeBackend(schema, {
      createSchema: false,
      table: 'my_results',
      groupTable: 'my_groups',
    });
    try {
      await expect(b.store(success(randomUUID(), 1))).rejects.toMatchObject({
        code: 'CONVEYOR_ERR_CONNECTION',
      });
      expect(await tablesIn(schema)).toEqual([]);

      const shipped = readFileSync(join(__dirname, '..', 'sql', 'schema.sql'), 'utf8')
        .split('"public"')
        .join(`"${schema}"`)
        .split('conveyor_task_results')
        .join('my_results')
        .split('conveyor_group_results')
        .join('my_groups');
      await sql(shipped);
      const meta = success(randomUUID(), 'on hand-made tables');
      await b.store(meta);
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
    } finally {
      await b.close();
    }
  });

  it('ships sql/schema.sql with the same DDL the migrator runs', () => {
    const shipped = readFileSync(join(__dirname, '..', 'sql', 'schema.sql'), 'utf8');
    const rendered = renderSchemaSql({
      schema: 'public',
      table: 'conveyor_task_results',
      groupTable: 'conveyor_group_results',
    });
    expect(shipped.endsWith(rendered)).toBe(true);
  });
});

describe('custom names', () => {
  it('uses a custom schema and table names, including mixed case', async () => {
    const schema = newSchema();
    const b = makeBackend(schema, { table: 'TaskResults', groupTable: 'group_meta_2' });
    try {
      const meta = success(randomUUID(), 'custom');
      await b.store(meta);
      await b.storeGroup({ group_id: 'g1', result: [] });
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
      await expect(b.waitForReady(meta.task_id, 2_000)).resolves.toEqual(meta);
      const rows = await sql(`SELECT task_id FROM "${schema}"."TaskResults"`);
      expect(rows).toEqual([{ task_id: meta.task_id }]);
      expect(await sql(`SELECT group_id FROM "${schema}".group_meta_2`)).toEqual([
        { group_id: 'g1' },
      ]);
    } finally {
      await b.close();
    }
  });

  it('keeps two backends with different tables in one schema apart', async () => {
    const schema = newSchema();
    const a = makeBackend(schema, { table: 'results_a', groupTable: 'groups_a' });
    const b = makeBackend(schema, { table: 'results_b', groupTable: 'groups_b' });
    try {
      const meta = success(randomUUID(), 'only in a');
      await Promise.all([a.connect(), b.connect()]);
      await a.store(meta);
      await expect(b.get(meta.task_id)).resolves.toBeUndefined();
      await expect(b.waitForReady(meta.task_id, 300)).resolves.toBeUndefined();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it.each([
    ['schema', { schema: 'bad-name' }],
    ['schema', { schema: 'x"; DROP TABLE users; --' }],
    ['schema', { schema: 'pg_mine' }],
    ['schema', { schema: '' }],
    ['table', { table: '1starts_with_digit' }],
    ['table', { table: 'a'.repeat(49) }],
    ['table', { table: 'with space' }],
    ['groupTable', { groupTable: 'dotted.name' }],
    ['groupTable', { table: 'same', groupTable: 'same' }],
  ])('rejects an invalid %s with a ConfigError: %j', (_option, names) => {
    expect(() => new PostgresResultBackend({ url: DATABASE_URL, ...names })).toThrow(ConfigError);
  });
});

describe('configuration', () => {
  it.each([
    ['neither url nor pool', {}],
    ['both url and pool', { url: DATABASE_URL, pool: new Pool() }],
    ['maxConnections with a pool', { pool: new Pool(), maxConnections: 3 }],
    ['a zero statement timeout', { url: DATABASE_URL, statementTimeoutMs: 0 }],
    ['a negative expiry', { url: DATABASE_URL, resultExpiresMs: -1 }],
    [
      'a poll ceiling below the floor',
      { url: DATABASE_URL, minPollIntervalMs: 50, maxPollIntervalMs: 10 },
    ],
  ])('rejects %s with a ConfigError', (_what, options) => {
    expect(() => new PostgresResultBackend(options)).toThrow(ConfigError);
  });

  it('runs on a pool it is given and leaves that pool open on close', async () => {
    const schema = newSchema();
    const pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
    try {
      const b = new PostgresResultBackend({ pool, schema });
      const meta = success(randomUUID(), 'pooled');
      await b.store(meta);
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
      await b.close();
      expect(pool.ended).toBe(false);
      await expect(pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    } finally {
      await pool.end();
    }
  });

  it.each([['closeClient'], ['endPool (its deprecated old name)']])(
    'ends a given pool on close when %s is set',
    async (option) => {
      const schema = newSchema();
      const pool = new Pool({ connectionString: DATABASE_URL, max: 2 });
      const b = new PostgresResultBackend(
        option === 'closeClient'
          ? { pool, schema, closeClient: true }
          : { pool, schema, endPool: true },
      );
      await b.connect();
      await b.close();
      expect(pool.ended).toBe(true);
    },
  );

  it('accepts the old option names, with a deprecation warning for each', async () => {
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const name = `conveyor-test-${randomUUID().slice(0, 8)}`;
    const b = new PostgresResultBackend({
      connectionString: DATABASE_URL,
      connectionTimeoutMs: 2_000,
      applicationName: name,
      schema: newSchema(),
      onError: () => undefined,
    });
    try {
      await b.connect();
      const rows = await sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [name]);
      expect(rows.length).toBeGreaterThan(0);
      const warnings = emitWarning.mock.calls.map(([message]) => String(message)).join('\n');
      expect(warnings).toMatch(/`connectionString`.*`url`/);
      expect(warnings).toMatch(/`connectionTimeoutMs`.*`connectTimeoutMs`/);
      expect(warnings).toMatch(/`applicationName`.*`connectionName`/);
    } finally {
      emitWarning.mockRestore();
      await b.close();
    }
  });

  it('refuses an option given under both its names', () => {
    expect(
      () => new PostgresResultBackend({ url: DATABASE_URL, connectionString: DATABASE_URL }),
    ).toThrow(ConfigError);
  });

  it('names its connections with application_name', async () => {
    const schema = newSchema();
    const name = `conveyor-test-${randomUUID().slice(0, 8)}`;
    const b = makeBackend(schema, { connectionName: name });
    try {
      await b.connect();
      const rows = await sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [name]);
      expect(rows.length).toBeGreaterThan(0);
    } finally {
      await b.close();
    }
  });

  it('rejects operations after close with a ConnectionError', async () => {
    const b = makeBackend(newSchema());
    await b.close();
    await expect(b.get(randomUUID())).rejects.toMatchObject({ code: 'CONVEYOR_ERR_CONNECTION' });
  });
});
