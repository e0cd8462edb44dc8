import { randomUUID } from 'node:crypto';
import { ConnectionError, SerializationError } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { Client, Pool, type QueryConfig, type QueryResult } from 'pg';
import { PostgresResultBackend, type PostgresResultBackendOptions } from '../src';
import { taskIdsOfPayload } from '../src/notification-listener';
import { notifyChannel } from '../src/schema';
import { DATABASE_URL } from '../../../test/support/services';
import { makeBackend, sql, state, success, useSchema } from '../../../test/support/postgres';

const schema = useSchema();

/** A pool that records the row count of every store statement it runs, in order. */
function storeCountingPool(): { pool: Pool; statements: number[] } {
  const pool = new Pool({ connectionString: DATABASE_URL, max: 4 });
  const statements: number[] = [];
  const original = pool.query.bind(pool) as (config: QueryConfig) => Promise<QueryResult>;
  const counted = (config: QueryConfig): Promise<QueryResult> => {
    if (config.text.includes('INSERT INTO')) {
      const first = config.values?.[0];
      statements.push(Array.isArray(first) ? first.length : 1);
    }
    return original(config);
  };
  (pool as unknown as { query: typeof counted }).query = counted;
  return { pool, statements };
}

function counted(options: Partial<PostgresResultBackendOptions> = {}): {
  backend: PostgresResultBackend;
  statements: number[];
  end: () => Promise<void>;
} {
  const { pool, statements } = storeCountingPool();
  const backend = new PostgresResultBackend({ pool, schema, onError: () => undefined, ...options });
  return {
    backend,
    statements,
    end: async () => {
      await backend.close();
      await pool.end();
    },
  };
}

async function storedStatus(taskId: string): Promise<string | undefined> {
  const rows = await sql<{ status: string }>(
    `SELECT status FROM "${schema}".conveyor_task_results WHERE task_id = $1`,
    [taskId],
  );
  return rows[0]?.status;
}

beforeAll(async () => {
  const setup = makeBackend(schema);
  await setup.connect();
  await setup.close();
});

describe('batched stores', () => {
  it('writes 1,000 concurrent stores in a few multi-row statements and resolves each', async () => {
    const { backend, statements, end } = counted();
    try {
      await backend.connect();
      const ids = Array.from({ length: 1_000 }, () => randomUUID());
      await Promise.all(ids.map((id, i) => backend.store(success(id, i))));
      // Default batch size 100: ten statements, not a thousand.
      expect(statements.reduce((a, b) => a + b, 0)).toBe(1_000);
      expect(statements.length).toBeLessThanOrEqual(12);
      expect(Math.max(...statements)).toBe(100);
      const rows = await sql<{ task_id: string; n: number }>(
        `SELECT task_id, (meta->>'result')::int AS n FROM "${schema}".conveyor_task_results
          WHERE task_id = ANY($1::text[])`,
        [ids],
      );
      expect(new Map(rows.map((r) => [r.task_id, r.n]))).toEqual(
        new Map(ids.map((id, i) => [id, i])),
      );
    } finally {
      await end();
    }
  });

  it('sends a lone store at once, in a statement of its own', async () => {
    const { backend, statements, end } = counted();
    try {
      await backend.connect();
      const meta = success(randomUUID(), 'alone');
      const started = Date.now();
      await backend.store(meta);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(statements).toEqual([1]);
      await expect(backend.get(meta.task_id)).resolves.toEqual(meta);
    } finally {
      await end();
    }
  });

  it('sends every store alone with storeBatchSize 1', async () => {
    const { backend, statements, end } = counted({ storeBatchSize: 1 });
    try {
      await Promise.all(Array.from({ length: 20 }, () => backend.store(success(randomUUID(), 1))));
      expect(statements).toEqual(Array.from({ length: 20 }, () => 1));
    } finally {
      await end();
    }
  });

  it('keeps the final-state rule inside a batch and across batches, in call order per task', async () => {
    const { backend, statements, end } = counted();
    try {
      await backend.connect();
      const id = randomUUID();
      const other = randomUUID();
      // Issued together: a batch never holds one id twice, so these take several statements,
      // in the order they were made.
      await Promise.all([
        backend.store(state(id, 'STARTED')),
        backend.store(state(other, 'STARTED')),
        backend.store(success(id, 'first')),
        backend.store(state(id, 'STARTED')),
        backend.store(success(id, 'second')),
        backend.store(state(other, 'RETRY')),
      ]);
      await expect(backend.get(id)).resolves.toEqual(success(id, 'first'));
      expect((await backend.get(other))?.status).toBe('RETRY');
      expect(statements.length).toBeGreaterThanOrEqual(4);
      expect(statements.length).toBeLessThan(6);
    } finally {
      await end();
    }
  });

  it('fails only the rows jsonb refuses, not the others of their batch', async () => {
    const { backend, end } = counted();
    try {
      await backend.connect();
      const good = Array.from({ length: 30 }, () => randomUUID());
      const nul = randomUUID();
      const surrogate = randomUUID();
      const outcomes = await Promise.allSettled([
        ...good.slice(0, 15).map((id) => backend.store(success(id, 'ok'))),
        backend.store(success(nul, 'nul \u0000 inside')),
        backend.store(success(surrogate, 'lone \ud800 surrogate')),
        ...good.slice(15).map((id) => backend.store(success(id, 'ok'))),
      ]);
      const rejected = outcomes.filter((o) => o.status === 'rejected');
      expect(rejected).toHaveLength(2);
      for (const o of rejected) {
        expect((o as PromiseRejectedResult).reason).toBeInstanceOf(SerializationError);
      }
      expect(await storedStatus(nul)).toBeUndefined();
      expect(await storedStatus(surrogate)).toBeUndefined();
      for (const id of good) expect(await storedStatus(id)).toBe('SUCCESS');
      // An escaped backslash before "u0000" is ordinary text and is stored.
      const text = success(randomUUID(), 'a literal \\u0000, not a NUL');
      await backend.store(text);
      await expect(backend.get(text.task_id)).resolves.toEqual(text);
    } finally {
      await end();
    }
  });

  it('falls back to row-by-row statements when the database refuses a batch for one row', async () => {
    const { backend, statements, end } = counted();
    try {
      await backend.connect();
      const good = Array.from({ length: 9 }, () => randomUUID());
      // Its NOTIFY payload would pass PostgreSQL's 8,000-byte limit: the database refuses the
      // statement that holds it (as it always refused a store of this id).
      const bad = `${randomUUID()}-`.padEnd(9_000, 'x');
      const outcomes = await Promise.allSettled([
        ...good.map((id) => backend.store(success(id, 'neighbour'))),
        backend.store(success(bad, 'refused')),
      ]);
      expect(outcomes.slice(0, 9).every((o) => o.status === 'fulfilled')).toBe(true);
      expect(outcomes[9]!.status).toBe('rejected');
      expect((outcomes[9] as PromiseRejectedResult).reason).toBeInstanceOf(ConnectionError);
      // One refused batch of 10, then each row alone.
      expect(statements[0]).toBe(10);
      expect(statements.slice(1)).toEqual(Array.from({ length: 10 }, () => 1));
      for (const id of good) expect(await storedStatus(id)).toBe('SUCCESS');
    } finally {
      await end();
    }
  });

  it('writes the stores accepted before close() and refuses those after', async () => {
    const { backend, end } = counted();
    try {
      const ids = Array.from({ length: 50 }, () => randomUUID());
      const stores = ids.map((id) => backend.store(success(id, 'before close')));
      const closing = backend.close();
      await expect(backend.store(success(randomUUID(), 'after'))).rejects.toBeInstanceOf(
        ConnectionError,
      );
      await closing;
      await expect(Promise.all(stores)).resolves.toBeDefined();
      for (const id of ids) expect(await storedStatus(id)).toBe('SUCCESS');
    } finally {
      await end();
    }
  });

  it('notifies a batch with JSON arrays of its final ids, each payload under 8,000 bytes', async () => {
    const listener = new Client({ connectionString: DATABASE_URL });
    const payloads: string[] = [];
    await listener.connect();
    const writer = makeBackend(schema, { storeBatchSize: 300 });
    try {
      const channel = notifyChannel({
        schema,
        table: 'conveyor_task_results',
        groupTable: 'conveyor_group_results',
      });
      listener.on('notification', (m) => {
        if (m.channel === channel && m.payload !== undefined) payloads.push(m.payload);
      });
      await listener.query(`LISTEN "${channel}"`);
      await writer.connect();
      // 300 ids of 100 characters: about 31 kB of JSON, so several notifications.
      const ids = Array.from({ length: 300 }, () => `${randomUUID()}-`.repeat(3).padEnd(100, 'x'));
      const started = randomUUID();
      await Promise.all([
        ...ids.map((id, i) => writer.store(success(id, i))),
        writer.store(state(started, 'STARTED')),
      ]);
      await waitFor(
        () => payloads.flatMap((p) => JSON.parse(p) as string[]).length === ids.length,
        'the notifications',
      );
      expect(payloads.length).toBeGreaterThanOrEqual(4);
      expect(payloads.length).toBeLessThan(10);
      expect(Math.max(...payloads.map((p) => Buffer.byteLength(p)))).toBeLessThan(8_000);
      // Every final id once; the STARTED one not at all.
      expect(payloads.flatMap((p) => JSON.parse(p) as string[]).sort()).toEqual([...ids].sort());
    } finally {
      await writer.close();
      await listener.end();
    }
  });

  it('rejects an invalid storeBatchSize', () => {
    expect(() => makeBackend(schema, { storeBatchSize: 0 })).toThrow(/storeBatchSize/);
  });
});

describe('getMany', () => {
  it('reads many tasks in one query, in order, skipping missing and expired ones', async () => {
    const { pool, statements } = storeCountingPool();
    const reads: number[] = [];
    const query = pool.query.bind(pool) as (config: QueryConfig) => Promise<QueryResult>;
    (pool as unknown as { query: typeof query }).query = (config) => {
      if (config.text.includes('unnest($1::text[])') && config.text.startsWith('SELECT')) {
        reads.push((config.values?.[0] as string[]).length);
      }
      return query(config);
    };
    const b = new PostgresResultBackend({
      pool,
      schema,
      resultExpiresMs: 60_000,
      onError: () => undefined,
    });
    try {
      const metas = Array.from({ length: 300 }, (_, i) => success(randomUUID(), i));
      await Promise.all(metas.map((m) => b.store(m)));
      expect(statements.length).toBeLessThan(10);
      const expired = metas[7]!.task_id;
      await sql(
        `UPDATE "${schema}".conveyor_task_results SET updated_at = now() - interval '2 minutes'
          WHERE task_id = $1`,
        [expired],
      );
      const missing = randomUUID();
      const ids = [...metas.map((m) => m.task_id), missing, metas[0]!.task_id];
      const got = await b.getMany(ids);
      expect(reads).toEqual([301]);
      expect(got).toHaveLength(302);
      expect(got[0]).toEqual(metas[0]);
      expect(got[7]).toBeUndefined();
      expect(got[300]).toBeUndefined();
      expect(got[301]).toEqual(metas[0]);
      expect(got[301]).not.toBe(got[0]);
      expect(got.filter((m) => m !== undefined)).toHaveLength(300);
    } finally {
      await b.close();
      await pool.end();
    }
  });
});

describe('notification payloads', () => {
  it('names one task id, or a JSON array of them', () => {
    expect(taskIdsOfPayload('abc')).toEqual(['abc']);
    expect(taskIdsOfPayload('["a","b"]')).toEqual(['["a","b"]', 'a', 'b']);
    expect(taskIdsOfPayload('[not json')).toEqual(['[not json']);
  });
});
