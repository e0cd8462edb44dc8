import { randomUUID } from 'node:crypto';
import { sleep, waitFor } from '@conveyor/core/testing';
import { Pool, type QueryConfig, type QueryResult } from 'pg';
import { PostgresResultBackend } from '../src';
import { DATABASE_URL } from '../../../test/support/services';
import { makeBackend, sql, state, success, useSchema } from '../../../test/support/postgres';

const schema = useSchema();

/** One poll query: the ids it asked for, and when it started and ended (ms since the epoch). */
interface Poll {
  ids: string[];
  startedAt: number;
  endedAt?: number;
}

/** A pool that records every poll query it runs (and how many ran at once). */
function countingPool(): {
  pool: Pool;
  polls: Poll[];
  maxConcurrentPolls: () => number;
} {
  const pool = new Pool({ connectionString: DATABASE_URL, max: 4 });
  const polls: Poll[] = [];
  let running = 0;
  let maxRunning = 0;
  const original = pool.query.bind(pool) as (config: QueryConfig) => Promise<QueryResult>;
  const counted = async (config: QueryConfig): Promise<QueryResult> => {
    if (!config.text.includes('= ANY($1::text[])')) return original(config);
    const poll: Poll = { ids: [...(config.values?.[0] as string[])], startedAt: Date.now() };
    polls.push(poll);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      return await original(config);
    } finally {
      running -= 1;
      poll.endedAt = Date.now();
    }
  };
  (pool as unknown as { query: typeof counted }).query = counted;
  return { pool, polls, maxConcurrentPolls: () => maxRunning };
}

/**
 * Waits until the poller has backed off: two successive polls at least `gapMs` apart (from the
 * end of one to the start of the next). Each gap doubles the one before, so the next poll is at
 * least another `gapMs` away (or `maxPollIntervalMs`, once reached).
 */
async function backedOff(polls: Poll[], gapMs: number): Promise<void> {
  await waitFor(
    () =>
      polls.some((poll, i) => {
        const previous = polls[i - 1]?.endedAt;
        return previous !== undefined && poll.startedAt - previous >= gapMs;
      }),
    `polls ${gapMs} ms apart`,
    20_000,
  );
}

describe('waiting for results', () => {
  it('serves 10,000 concurrent waits with one poll query per tick, and resolves them all', async () => {
    const { pool, polls, maxConcurrentPolls } = countingPool();
    const waiter = new PostgresResultBackend({ pool, schema, onError: () => undefined });
    const writer = makeBackend(schema, { maxConnections: 8 });
    try {
      await waiter.connect();
      const ids = Array.from({ length: 10_000 }, () => randomUUID());
      const waits = ids.map((id) => waiter.waitForReady(id, 25_000));
      await waitFor(() => polls.filter((poll) => poll.endedAt).length >= 3, 'three polls');

      // Every poll so far asked for all 10,000 ids in one query, never two queries at a time.
      expect(polls.length).toBeGreaterThan(0);
      expect(polls.every((poll) => poll.ids.length === 10_000)).toBe(true);
      expect(maxConcurrentPolls()).toBe(1);

      // Results arrive in ten waves. Written in bulk rather than by 10,000 store() calls: this
      // test is about the waiting side, and each store() is a commit of its own.
      for (let i = 0; i < ids.length; i += 1_000) {
        await sql(
          `INSERT INTO "${schema}".conveyor_task_results (task_id, status, meta)
           SELECT id, 'SUCCESS', jsonb_build_object('status', 'SUCCESS', 'result', n, 'traceback', null,
                  'children', '[]'::jsonb, 'date_done', '2026-11-24T04:15:21.037806', 'task_id', id)
             FROM unnest($1::text[], $2::int[]) AS t(id, n)`,
          [ids.slice(i, i + 1_000), ids.slice(i, i + 1_000).map((_, j) => i + j)],
        );
      }
      await writer.store(success(randomUUID(), 'one through the backend too'));
      const results = await Promise.all(waits);
      expect(results.map((r) => r?.result)).toEqual(ids.map((_, i) => i));
      expect(maxConcurrentPolls()).toBe(1);
      // One query per tick, each for every id still pending: the sizes only ever shrink.
      const sizes = polls.map((poll) => poll.ids.length);
      expect(sizes[0]).toBe(10_000);
      expect(sizes.every((size, i) => i === 0 || size <= sizes[i - 1]!)).toBe(true);
    } finally {
      await waiter.close();
      await writer.close();
      await pool.end();
    }
  });

  it('backs off while nothing changes instead of polling at the short interval', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      minPollIntervalMs: 5,
      maxPollIntervalMs: 200,
      onError: () => undefined,
    });
    try {
      await waiter.connect();
      const waiting = waiter.waitForReady(randomUUID(), 1_500);
      await expect(waiting).resolves.toBeUndefined();
      // At a fixed 5 ms that would be about 300 polls; doubling up to 200 ms gives about a dozen.
      expect(polls.length).toBeGreaterThan(3);
      expect(polls.length).toBeLessThan(30);
    } finally {
      await waiter.close();
      await pool.end();
    }
  });

  it('polls again promptly when a new waiter arrives after a long quiet period', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      maxPollIntervalMs: 5_000,
      notify: false,
      onError: () => undefined,
    });
    const writer = makeBackend(schema);
    try {
      const quiet = waiter.waitForReady(randomUUID(), 8_000);
      await backedOff(polls, 600); // the next poll is over a second away
      const id = randomUUID();
      await writer.store(success(id, 'ready before the wait'));
      const before = polls.length;
      await expect(waiter.waitForReady(id, 1_000)).resolves.toEqual(
        success(id, 'ready before the wait'),
      );
      expect(polls.length).toBeGreaterThan(before);
      void quiet;
    } finally {
      await waiter.close();
      await writer.close();
      await pool.end();
    }
  });

  it('delivers results by polling alone when NOTIFY is off', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      notify: false,
      onError: () => undefined,
    });
    const writer = makeBackend(schema, { notify: false });
    try {
      const id = randomUUID();
      const waiting = waiter.waitForReady(id, 10_000);
      // Stored once the wait is being polled, so only a later poll can find it.
      await waitFor(() => polls.some((poll) => poll.endedAt), 'a poll');
      await writer.store(state(id, 'STARTED'));
      await writer.store(success(id, 'polled'));
      await expect(waiting).resolves.toEqual(success(id, 'polled'));
    } finally {
      await waiter.close();
      await writer.close();
      await pool.end();
    }
  });

  it('wakes a backed-off waiter through NOTIFY with a lookup of its id alone', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      maxPollIntervalMs: 20_000,
      onError: () => undefined,
    });
    const writer = makeBackend(schema);
    try {
      const id = randomUUID();
      // Never stored: every full poll asks for it, so a query without it is a notified lookup.
      const other = randomUUID();
      const waiting = waiter.waitForReady(id, 25_000);
      const otherWait = waiter.waitForReady(other, 25_000);
      await backedOff(polls, 600); // the next scheduled poll is over a second away
      const before = polls.length;
      await writer.store(success(id, 'notified'));
      await expect(waiting).resolves.toEqual(success(id, 'notified'));
      // The notification triggered a query for this id alone (a full poll landing meanwhile,
      // on a slow machine, may also see it; without NOTIFY only full polls would).
      const lookups = polls.slice(before).filter((poll) => !poll.ids.includes(other));
      expect(lookups.map((poll) => poll.ids)).toEqual([[id]]);
      void otherWait;
    } finally {
      await waiter.close();
      await writer.close();
      await pool.end();
    }
  });

  it('looks up only the notified ids, in one query per batch of notifications', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      maxPollIntervalMs: 60_000,
      onError: () => undefined,
    });
    const writer = makeBackend(schema, { storeBatchSize: 300 });
    try {
      await writer.connect();
      // Long ids, so that the batch's notification is cut into several payloads.
      const ids = Array.from({ length: 300 }, () => `${randomUUID()}-`.repeat(3).padEnd(100, 'x'));
      const never = randomUUID();
      const waits = ids.map((id) => waiter.waitForReady(id, 20_000));
      const neverWait = waiter.waitForReady(never, 20_000);
      await backedOff(polls, 600); // the next full poll is over a second away
      const before = polls.length;
      await Promise.all(ids.map((id, i) => writer.store(success(id, i))));
      const results = await Promise.all(waits);
      expect(results.map((r) => r?.result)).toEqual(ids.map((_, i) => i));
      // Only the notified ids were asked for, each once, in a few queries. A full poll (it asks
      // for `never` too) is seconds away; one landing meanwhile on a slow machine may find some
      // of them first, so the ids no full poll saw must all have come through notifications.
      const after = polls.slice(before);
      const full = after.filter((poll) => poll.ids.includes(never));
      const lookups = after.filter((poll) => !poll.ids.includes(never));
      const looked = lookups.flatMap((poll) => poll.ids);
      expect(new Set(looked).size).toBe(looked.length);
      expect(looked.every((id) => ids.includes(id))).toBe(true);
      expect(lookups.length).toBeGreaterThan(0);
      expect(lookups.length).toBeLessThanOrEqual(6);
      const seenByFullPolls = new Set(full.flatMap((poll) => poll.ids));
      expect(ids.filter((id) => !seenByFullPolls.has(id) && !looked.includes(id))).toEqual([]);
      void neverWait;
    } finally {
      await waiter.close();
      await writer.close();
      await pool.end();
    }
  });

  it('keeps the full poll backed off while notified results stream in', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      minPollIntervalMs: 5,
      maxPollIntervalMs: 400,
      onError: () => undefined,
    });
    const writer = makeBackend(schema);
    try {
      await writer.connect();
      const ids = Array.from({ length: 500 }, () => randomUUID());
      const waits = ids.map((id) => waiter.waitForReady(id, 20_000));
      const started = Date.now();
      // One result every 20 ms for 2 s: each NOTIFY used to bring the next full poll forward.
      for (let i = 0; i < 100; i += 1) {
        await writer.store(success(ids[i]!, i));
        await sleep(20);
      }
      await expect(Promise.all(waits.slice(0, 100))).resolves.toHaveLength(100);
      const elapsed = Date.now() - started;
      // Full polls ask for at least the 400 ids never stored; lookups for a few notified ones
      // (notifications arriving while a query runs are merged into the next one).
      const full = polls.filter((poll) => poll.ids.length >= 400).length;
      expect(full).toBeLessThanOrEqual(elapsed / 400 + 12);
      const looked = new Set(
        polls.filter((poll) => poll.ids.length < 400).flatMap((poll) => poll.ids),
      );
      expect(ids.slice(0, 100).filter((id) => looked.has(id)).length).toBeGreaterThanOrEqual(50);
    } finally {
      await waiter.close();
      await writer.close();
      await pool.end();
    }
  });

  it('finds a result whose NOTIFY was lost at the next full poll, within maxPollIntervalMs', async () => {
    const { pool, polls } = countingPool();
    const waiter = new PostgresResultBackend({
      pool,
      schema,
      maxPollIntervalMs: 300,
      onError: () => undefined,
    });
    // A writer that does not notify stands for a lost notification.
    const silent = makeBackend(schema, { notify: false });
    try {
      await silent.connect();
      const ids = Array.from({ length: 50 }, () => randomUUID());
      const waits = ids.map((id) => waiter.waitForReady(id, 20_000));
      await backedOff(polls, 250); // backed off to the ceiling
      const before = polls.length;
      await Promise.all(ids.slice(0, 10).map((id, i) => silent.store(success(id, i))));
      const found = await Promise.all(waits.slice(0, 10));
      expect(found.map((r) => r?.result)).toEqual(ids.slice(0, 10).map((_, i) => i));
      // Found by a full poll (all 50 pending ids); nothing asked for the ids alone.
      const after = polls.slice(before);
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((poll) => poll.ids.length >= 40)).toBe(true);
      // Backed off to the ceiling, the poller waits at most maxPollIntervalMs between the end
      // of one poll and the start of the next (doubling on past it would wait 600 ms, 1.2 s…).
      const gaps = polls
        .slice(Math.max(1, before - 2))
        .map((poll, i, all) => (i === 0 ? 0 : poll.startedAt - all[i - 1]!.endedAt!));
      expect(Math.max(...gaps)).toBeLessThan(300 + 200);
    } finally {
      await waiter.close();
      await silent.close();
      await pool.end();
    }
  });

  it('returns a ready result and nothing else when the timeout is zero', async () => {
    const b = makeBackend(schema);
    try {
      const id = randomUUID();
      await expect(b.waitForReady(id, 0)).resolves.toBeUndefined();
      await b.store(state(id, 'STARTED'));
      await expect(b.waitForReady(id, 0)).resolves.toBeUndefined();
      await b.store(success(id, 0));
      await expect(b.waitForReady(id, 0)).resolves.toEqual(success(id, 0));
    } finally {
      await b.close();
    }
  });

  it('returns undefined at once from a wait begun after close', async () => {
    const b = makeBackend(schema);
    await b.close();
    await expect(b.waitForReady(randomUUID(), 10_000)).resolves.toBeUndefined();
  });
});
