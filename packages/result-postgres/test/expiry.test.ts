import { randomUUID } from 'node:crypto';
import { waitFor } from '@conveyor/core/testing';
import { makeBackend, sql, success, useSchema } from '../../../test/support/postgres';

const schema = useSchema();
const results = `"${schema}".conveyor_task_results`;
const groups = `"${schema}".conveyor_group_results`;

beforeEach(async () => {
  const b = makeBackend(schema);
  await b.connect();
  await b.close();
  await sql(`TRUNCATE ${results}, ${groups}`);
});

/** Inserts `count` results written `ageSql` ago (e.g. '2 days'), straight into the table. */
async function insertAged(count: number, ageSql: string): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await sql(
    `INSERT INTO ${results} (task_id, status, meta, updated_at)
     SELECT id, 'SUCCESS', jsonb_build_object('status', 'SUCCESS', 'task_id', id), now() - $2::interval
       FROM unnest($1::text[]) AS id`,
    [ids, ageSql],
  );
  return ids;
}

async function countRows(table: string): Promise<number> {
  const rows = await sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0]!.n);
}

describe('result expiry', () => {
  it('deletes old results and groups in batches and keeps fresh ones', async () => {
    const b = makeBackend(schema, { expiryBatchSize: 1_000, expirySweepIntervalMs: 0 });
    try {
      await insertAged(2_500, '2 days');
      const fresh = success(randomUUID(), 'fresh');
      await b.store(fresh);
      await b.storeGroup({ group_id: 'old-group', result: [] });
      await b.storeGroup({ group_id: 'new-group', result: [] });
      // Age rows the way time would: by moving their write time back.
      await sql(
        `UPDATE ${groups} SET updated_at = now() - interval '2 days' WHERE group_id = 'old-group'`,
      );

      const sweep = await b.sweepExpired();

      // 1,000 + 1,000 + 500 results, then one batch of groups.
      expect(sweep).toEqual({ ran: true, deletedResults: 2_500, deletedGroups: 1, batches: 4 });
      expect(await countRows(results)).toBe(1);
      await expect(b.get(fresh.task_id)).resolves.toEqual(fresh);
      await expect(b.getGroup('new-group')).resolves.toEqual({ group_id: 'new-group', result: [] });
      await expect(b.getGroup('old-group')).resolves.toBeUndefined();
    } finally {
      await b.close();
    }
  });

  it('lets only one of two concurrent sweeps run', async () => {
    const one = makeBackend(schema, { expiryBatchSize: 100, expirySweepIntervalMs: 0 });
    const two = makeBackend(schema, { expiryBatchSize: 100, expirySweepIntervalMs: 0 });
    try {
      await Promise.all([one.connect(), two.connect()]);
      await insertAged(20_000, '2 days');

      const sweeps = await Promise.all([one.sweepExpired(), two.sweepExpired()]);

      expect(sweeps.map((s) => s.ran).sort()).toEqual([false, true]);
      const ran = sweeps.find((s) => s.ran)!;
      expect(ran.deletedResults).toBe(20_000);
      expect(ran.batches).toBeGreaterThanOrEqual(200);
      expect(sweeps.find((s) => !s.ran)).toEqual({
        ran: false,
        deletedResults: 0,
        deletedGroups: 0,
        batches: 0,
      });
      expect(await countRows(results)).toBe(0);
      // The lock was released: the next sweep runs.
      await expect(two.sweepExpired()).resolves.toMatchObject({ ran: true, deletedResults: 0 });
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('hides an expired result from get and waits before the sweep has deleted it', async () => {
    const b = makeBackend(schema, { resultExpiresMs: 60_000, expirySweepIntervalMs: 0 });
    try {
      const [old] = await insertAged(1, '2 minutes');
      await expect(b.get(old!)).resolves.toBeUndefined();
      await expect(b.waitForReady(old!, 200)).resolves.toBeUndefined();
      // An expired final state no longer blocks a new result for the same id.
      const again = success(old!, 'stored again');
      await b.store(again);
      await expect(b.get(old!)).resolves.toEqual(again);
    } finally {
      await b.close();
    }
  });

  it('keeps everything when resultExpiresMs is 0', async () => {
    const b = makeBackend(schema, { resultExpiresMs: 0 });
    try {
      const [old] = await insertAged(3, '400 days');
      await expect(b.get(old!)).resolves.toMatchObject({ status: 'SUCCESS' });
      await expect(b.sweepExpired()).resolves.toEqual({
        ran: false,
        deletedResults: 0,
        deletedGroups: 0,
        batches: 0,
      });
      expect(await countRows(results)).toBe(3);
    } finally {
      await b.close();
    }
  });

  it('sweeps periodically once expirySweepIntervalMs is set', async () => {
    const b = makeBackend(schema, { expirySweepIntervalMs: 100 });
    try {
      await insertAged(50, '2 days');
      const fresh = success(randomUUID(), 'stays');
      await b.store(fresh);
      await waitFor(async () => (await countRows(results)) === 1, 'the periodic sweep', 5_000, 25);
      await expect(b.get(fresh.task_id)).resolves.toEqual(fresh);
    } finally {
      await b.close();
    }
  });

  it('sweeps on the schedule a worker starts, and stops when told', async () => {
    const b = makeBackend(schema, { expirySweepIntervalMs: 0 });
    try {
      await b.connect();
      b.startExpirySweeper(100);
      await insertAged(10, '2 days');
      await waitFor(async () => (await countRows(results)) === 0, 'the started sweep', 5_000, 25);
      b.stopExpirySweeper();
      await new Promise((resolve) => setTimeout(resolve, 300)); // let a sweep in progress finish
      await insertAged(10, '2 days');
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await countRows(results)).toBe(10);
    } finally {
      await b.close();
    }
  });
});
