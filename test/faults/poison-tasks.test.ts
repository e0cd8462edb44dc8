import { DeadLetters, WorkerLostError, type AsyncResult, type Conveyor } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { withDeliveryLimit } from '../support/quorum-policy';
import { buildPackages } from '../support/faults/build';
import { FaultScope } from '../support/faults/fault-scope';
import { killAllWorkers, WorkerCrew } from '../support/faults/worker-process';

/** Where each sent task ended: a SUCCESS stored, or a dead letter in `<queue>.dead`. */
interface Outcome {
  succeeded: Set<string>;
  dead: Map<string, { reason: string; by: string }>;
}

async function outcomes(app: Conveyor, queue: string, ids: string[]): Promise<Outcome> {
  const metas = await Promise.all(ids.map((id) => app.backend!.get(id)));
  const succeeded = new Set(ids.filter((_, i) => metas[i]?.status === 'SUCCESS'));
  const page = await new DeadLetters({ transport: app.transport }).list(queue, { limit: 10_000 });
  const dead = new Map(
    page.items.map((d) => [d.id ?? '', { reason: d.reason, by: d.deadLetteredBy }]),
  );
  return { succeeded, dead };
}

/** Waits until every id has ended (SUCCESS or dead-lettered) and returns where each ended. */
async function settled(app: Conveyor, queue: string, ids: string[], timeoutMs: number) {
  let last: Outcome | undefined;
  await waitFor(
    async () => {
      last = await outcomes(app, queue, ids);
      return ids.every((id) => last!.succeeded.has(id) || last!.dead.has(id));
    },
    'every task SUCCESS or in <queue>.dead',
    timeoutMs,
  );
  return last!;
}

async function sendMix(app: Conveyor, good: number, poison: number) {
  const goodResults: AsyncResult<unknown>[] = [];
  const poisonResults: AsyncResult<unknown>[] = [];
  for (let i = 0; i < good; i += 1) goodResults.push(await app.send('faults.record', [i, 0]));
  for (let i = 0; i < poison; i += 1) poisonResults.push(await app.send('faults.crash', []));
  return { goodResults, poisonResults };
}

describe('faults: tasks that kill their worker', () => {
  let scope: FaultScope;
  let crew: WorkerCrew | undefined;

  beforeAll(() => buildPackages(), 120_000);
  afterEach(async () => {
    await crew?.stop();
    crew = undefined;
    await killAllWorkers();
    await scope.cleanup();
  });

  it('classic queue: a task calling process.exit(1) on every run is dead-lettered after maxDeliveries, FAILURE stored; the others complete', async () => {
    scope = new FaultScope('poison-classic');
    const producer = scope.producer();
    const { goodResults, poisonResults } = await sendMix(producer, 100, 2);
    crew = new WorkerCrew(scope.workerEnv({ concurrency: 1, maxDeliveries: 3 }), 2);
    for (const r of poisonResults) {
      const error = await r.get({ timeoutMs: 45_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkerLostError);
      expect(error).toMatchObject({
        excModule: 'billiard.exceptions',
        excMessage: ['delivered 3 times without completing'],
      });
    }
    const ids = [...goodResults, ...poisonResults].map((r) => r.id);
    const end = await settled(producer, scope.queue, ids, 30_000);
    const runs = await scope.runs();
    const extra = runs.length - new Set(runs.map((r) => r.id)).size;
    console.log(
      `poison, classic queue, maxDeliveries 3: sent ${ids.length}, SUCCESS ${end.succeeded.size}, ` +
        `in .dead ${end.dead.size}, runs ${runs.length} (${extra} extra, ` +
        `${runs.filter((r) => r.redelivered).length} flagged redelivered), ` +
        `worker restarts ${crew.restarts}, lost 0`,
    );
    for (const r of poisonResults) {
      expect(end.dead.get(r.id)).toEqual({
        by: 'worker',
        reason: 'delivered 3 times without completing',
      });
      expect(runs.filter((run) => run.id === r.id)).toHaveLength(3);
    }
    for (const r of goodResults) expect(end.succeeded.has(r.id)).toBe(true);
    // Every repeat run was told it was a redelivery.
    expect(extra).toBe(runs.filter((r) => r.redelivered).length);
  }, 60_000);

  it('quorum queue under a delivery-limit policy: every task ends SUCCESS or in <queue>.dead, none lost', async () => {
    scope = new FaultScope('poison-quorum', 'redis', 'quorum');
    const producer = scope.producer();
    await producer.transport.declareQueue({ name: scope.queue, queueType: 'quorum' });
    await withDeliveryLimit(scope.queue, 2, async () => {
      const { goodResults, poisonResults } = await sendMix(producer, 100, 2);
      // The worker's own cap is set past the broker's limit here, so the broker's fires.
      crew = new WorkerCrew(scope.workerEnv({ concurrency: 1, maxDeliveries: 100 }), 2);
      const ids = [...goodResults, ...poisonResults].map((r) => r.id);
      const end = await settled(producer, scope.queue, ids, 45_000);
      const runs = await scope.runs();
      console.log(
        `poison, quorum delivery-limit 2: sent ${ids.length}, SUCCESS ${end.succeeded.size}, ` +
          `in .dead ${end.dead.size}, runs ${runs.length}, worker restarts ${crew.restarts}, lost 0`,
      );
      for (const r of poisonResults) {
        expect(end.dead.get(r.id)).toMatchObject({ by: 'broker' });
        expect(end.dead.get(r.id)!.reason).toMatch(/delivery_limit/);
        // Delivered once, then twice more before the limit of 2 returns was passed.
        expect(runs.filter((run) => run.id === r.id)).toHaveLength(3);
      }
      for (const r of goodResults) expect(end.succeeded.has(r.id) || end.dead.has(r.id)).toBe(true);
    });
  }, 60_000);

  it("quorum queue: the worker's cap (3) fires before the broker's delivery limit (5) and stores FAILURE", async () => {
    scope = new FaultScope('poison-quorum-cap', 'redis', 'quorum');
    const producer = scope.producer();
    await producer.transport.declareQueue({ name: scope.queue, queueType: 'quorum' });
    await withDeliveryLimit(scope.queue, 5, async () => {
      const { goodResults, poisonResults } = await sendMix(producer, 20, 1);
      crew = new WorkerCrew(scope.workerEnv({ concurrency: 1, maxDeliveries: 3 }), 2);
      await expect(poisonResults[0]!.get({ timeoutMs: 45_000 })).rejects.toBeInstanceOf(
        WorkerLostError,
      );
      const ids = [...goodResults, ...poisonResults].map((r) => r.id);
      const end = await settled(producer, scope.queue, ids, 30_000);
      expect(end.dead.get(poisonResults[0]!.id)).toEqual({
        by: 'worker',
        reason: 'delivered 3 times without completing',
      });
      expect((await scope.runs()).filter((r) => r.id === poisonResults[0]!.id)).toHaveLength(3);
      for (const r of goodResults) expect(end.succeeded.has(r.id)).toBe(true);
    });
  }, 60_000);
});
