import { randomUUID } from 'node:crypto';
import {
  BACKEND_CAPABILITIES,
  capabilitiesOf,
  type BackendCapability,
  type BackendWith,
  type GroupMeta,
  type ResultBackend,
  type ResultMeta,
  type TaskState,
} from '@conveyor/core/plugin';
import { countersCases, leasesCases } from './capability-cases';
import { metaOf, successMeta } from './result-metas';
import { sleep } from './wait-for';

const state = (taskId: string, status: TaskState): ResultMeta => metaOf(taskId, status);
const success = successMeta;

/** What a result backend implementation gives the conformance suite. */
export interface BackendFixture {
  /**
   * A new backend instance. Every call returns one with its own connections to the same store,
   * so the suite can model a worker and a producer in different processes.
   */
  create(): ResultBackend | Promise<ResultBackend>;
  /** Removes what the suite stored (keys, rows). Called once after all tests. */
  cleanup?(): Promise<void>;
}

/**
 * Registers the behaviour every {@link ResultBackend} must have. `capabilities` lists the
 * optional capabilities the backend has: their cases run too, and a test fails when the list and
 * the backend's members disagree.
 */
export function describeBackendConformance(
  label: string,
  makeFixture: () => BackendFixture,
  options: { capabilities?: readonly BackendCapability[] } = {},
): void {
  const capabilities = options.capabilities ?? [];
  describe(`ResultBackend conformance: ${label}`, () => {
    let fixture: BackendFixture;
    const backends: ResultBackend[] = [];
    const open = async (): Promise<ResultBackend> => {
      const backend = await fixture.create();
      backends.push(backend);
      return backend;
    };

    beforeAll(() => {
      fixture = makeFixture();
    });
    afterEach(async () => {
      await Promise.all(backends.splice(0).map((b) => b.close()));
    });
    afterAll(async () => {
      await fixture.cleanup?.();
    });

    it('has exactly the optional capabilities its fixture lists', async () => {
      const b = await open();
      expect(capabilitiesOf(b)).toEqual(
        Object.keys(BACKEND_CAPABILITIES).filter((c) =>
          capabilities.includes(c as BackendCapability),
        ),
      );
    });
    // The test above checks that the backend has the members these casts assume.
    if (capabilities.includes('counters')) {
      countersCases(open as () => Promise<BackendWith<'counters'>>);
    }
    if (capabilities.includes('leases')) leasesCases(open as () => Promise<BackendWith<'leases'>>);

    it('returns undefined for a task with no stored result', async () => {
      const b = await open();
      await expect(b.get(randomUUID())).resolves.toBeUndefined();
    });

    it('stores and reads back the whole meta document, extended fields included', async () => {
      const b = await open();
      const meta: ResultMeta = {
        ...success(randomUUID(), {
          total: 9,
          items: ['a', 'ü', '😀'],
          nested: { ok: true, none: null },
        }),
        name: 'math.add',
        args: [4, 5],
        kwargs: { scale: 1 },
        worker: 'worker-1@host',
        retries: 0,
        queue: 'celery',
        parent_id: null,
        root_id: 'root-1',
      };
      await b.store(meta);
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
    });

    it('lets non-ready states replace each other, then a ready one', async () => {
      const b = await open();
      const id = randomUUID();
      for (const status of ['RECEIVED', 'STARTED', 'PROGRESS', 'RETRY', 'STARTED'] as TaskState[]) {
        await b.store(state(id, status));
        expect((await b.get(id))?.status).toBe(status);
      }
      await b.store(success(id, 1));
      expect((await b.get(id))?.status).toBe('SUCCESS');
    });

    it.each(['SUCCESS', 'FAILURE', 'REVOKED'] as TaskState[])(
      'never overwrites a stored %s, not with STARTED nor with another result',
      async (final) => {
        const b = await open();
        const id = randomUUID();
        const first: ResultMeta = {
          ...state(id, final),
          result: 'first',
          date_done: '2026-01-01T00:00:00.000000',
        };
        await b.store(first);
        await b.store(state(id, 'STARTED'));
        await b.store(state(id, 'PROGRESS'));
        await b.store(success(id, 'second'));
        await b.store(state(id, 'FAILURE'));
        await expect(b.get(id)).resolves.toEqual(first);
      },
    );

    it('reads in one instance what another stored', async () => {
      const writer = await open();
      const reader = await open();
      const meta = success(randomUUID(), 'shared');
      await writer.store(meta);
      await expect(reader.get(meta.task_id)).resolves.toEqual(meta);
    });

    it('returns a ready result from waitForReady at once', async () => {
      const b = await open();
      const meta = success(randomUUID(), 42);
      await b.store(meta);
      const started = Date.now();
      // Far below the timeout, with room for a loaded machine: only a wait that missed the
      // stored result would get near 20 s.
      await expect(b.waitForReady(meta.task_id, 20_000)).resolves.toEqual(meta);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('wakes a waiter when another instance stores the result later', async () => {
      const waiter = await open();
      const writer = await open();
      const id = randomUUID();
      const waiting = waiter.waitForReady(id, 10_000);
      await sleep(150);
      await writer.store(state(id, 'STARTED'));
      await sleep(100);
      const meta = success(id, 'late');
      await writer.store(meta);
      await expect(waiting).resolves.toEqual(meta);
    });

    it('returns undefined when the timeout passes, ignoring non-ready states', async () => {
      const b = await open();
      const id = randomUUID();
      const started = Date.now();
      const waiting = b.waitForReady(id, 700);
      await b.store(state(id, 'STARTED'));
      await expect(waiting).resolves.toBeUndefined();
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(650);
      expect(elapsed).toBeLessThan(5_000);
    });

    it('keeps waiting with a timeout past the reach of setTimeout (30 days, Infinity)', async () => {
      const b = await open();
      const ids = [randomUUID(), randomUUID()];
      // setTimeout fires a delay over 2^31-1 ms at once, which would end these waits now.
      const waits = [
        b.waitForReady(ids[0]!, 30 * 24 * 3_600_000),
        b.waitForReady(ids[1]!, Number.POSITIVE_INFINITY),
      ];
      const settled: unknown[] = [];
      waits.forEach((w) => void w.then((meta) => settled.push(meta)));
      await sleep(300);
      expect(settled).toEqual([]);
      const metas = ids.map((id) => success(id, 'after a long wait'));
      await Promise.all(metas.map((meta) => b.store(meta)));
      await expect(Promise.all(waits)).resolves.toEqual(metas);
    });

    it('wakes every waiter of the same task', async () => {
      const waiter = await open();
      const writer = await open();
      const id = randomUUID();
      const waits = Array.from({ length: 5 }, () => waiter.waitForReady(id, 10_000));
      await sleep(100);
      await writer.store(success(id, 'all'));
      const results = await Promise.all(waits);
      expect(results.map((r) => r?.result)).toEqual(['all', 'all', 'all', 'all', 'all']);
    });

    it('serves 1,000 concurrent waits on different tasks', async () => {
      const waiter = await open();
      const writer = await open();
      const ids = Array.from({ length: 1_000 }, () => randomUUID());
      const waits = ids.map((id) => waiter.waitForReady(id, 20_000));
      await sleep(100);
      await Promise.all(ids.map((id, i) => writer.store(success(id, i))));
      const results = await Promise.all(waits);
      expect(results.map((r) => r?.result)).toEqual(ids.map((_, i) => i));
    });

    it('reads many tasks at once, in order, when it offers getMany', async () => {
      const b = await open();
      if (!b.getMany) return;
      const stored = [success(randomUUID(), 1), state(randomUUID(), 'STARTED')];
      for (const meta of stored) await b.store(meta);
      const missing = randomUUID();
      await expect(b.getMany([stored[0]!.task_id, missing, stored[1]!.task_id])).resolves.toEqual([
        stored[0],
        undefined,
        stored[1],
      ]);
      await expect(b.getMany([])).resolves.toEqual([]);
    });

    it('forgets a result', async () => {
      const b = await open();
      const meta = success(randomUUID(), 'gone');
      await b.store(meta);
      await b.forget(meta.task_id);
      await expect(b.get(meta.task_id)).resolves.toBeUndefined();
    });

    it('stores, reads and forgets a group', async () => {
      const b = await open();
      const group: GroupMeta = {
        group_id: randomUUID(),
        result: [
          [[randomUUID(), null], null],
          [[randomUUID(), null], null],
        ],
        date_done: '2026-01-01T00:00:00.000000',
      };
      await b.storeGroup(group);
      await expect(b.getGroup(group.group_id)).resolves.toEqual(group);
      await b.forgetGroup(group.group_id);
      await expect(b.getGroup(group.group_id)).resolves.toBeUndefined();
    });

    it('ends pending waits with undefined on close', async () => {
      const b = await fixture.create();
      const waiting = b.waitForReady(randomUUID(), 30_000);
      await sleep(50);
      const started = Date.now();
      await b.close();
      await expect(waiting).resolves.toBeUndefined();
      expect(Date.now() - started).toBeLessThan(5_000);
    });
  });
}
