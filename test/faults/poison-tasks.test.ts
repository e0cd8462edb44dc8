import { DeadLetters, WorkerLostError, type AsyncResult, type Conveyor } from '@conveyor/core';
import { sleep } from '@conveyor/core/testing';
import { withDeliveryLimit } from '../support/quorum-policy';
import { useFaultScopes, type FaultScope } from '../support/faults/fault-scope';
import { WorkerCrew } from '../support/faults/worker-process';

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

/**
 * Polls until every id has ended, SUCCESS or dead-lettered, or `timeoutMs` passed; returns where
 * each ended and the ids that did neither, the lost ones.
 */
async function settle(app: Conveyor, queue: string, ids: string[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const end = await outcomes(app, queue, ids);
    const lost = ids.filter((id) => !end.succeeded.has(id) && !end.dead.has(id));
    if (lost.length === 0 || Date.now() > deadline) return { ...end, lost };
    await sleep(50);
  }
}

/** What a poison case sent, and the workers running it. */
interface PoisonCase {
  producer: Conveyor;
  good: AsyncResult<unknown>[];
  poison: AsyncResult<unknown>[];
  /** Every task sent, good then poison. */
  ids: string[];
  crew: WorkerCrew;
}

/**
 * Sends `good` `faults.record` tasks and `poison` `faults.crash` ones (which end their worker
 * every run) to the scope's queue, then starts two workers of concurrency 1, each capped at
 * `maxDeliveries` deliveries of a task, restarted whenever a task kills one; then runs `check`.
 * With a `deliveryLimit`, the queue (a quorum one) is declared first and all of it runs under a
 * delivery-limit policy of that many returns.
 */
async function runPoisonCase(
  scope: FaultScope,
  mix: { good: number; poison: number; maxDeliveries: number; deliveryLimit?: number },
  check: (sent: PoisonCase) => Promise<void>,
): Promise<void> {
  const producer = scope.producer();
  const work = async (): Promise<void> => {
    const good: AsyncResult<unknown>[] = [];
    const poison: AsyncResult<unknown>[] = [];
    for (let i = 0; i < mix.good; i += 1) good.push(await producer.send('faults.record', [i, 0]));
    for (let i = 0; i < mix.poison; i += 1) poison.push(await producer.send('faults.crash', []));
    const env = scope.workerEnv({ concurrency: 1, maxDeliveries: mix.maxDeliveries });
    const crew = new WorkerCrew(env, 2);
    const ids = [...good, ...poison].map((r) => r.id);
    return check({ producer, good, poison, ids, crew });
  };
  if (mix.deliveryLimit === undefined) return work();
  await producer.transport.declareQueue({ name: scope.queue, queueType: scope.queueType });
  return withDeliveryLimit(scope.queue, mix.deliveryLimit, work);
}

describe('faults: tasks that kill their worker', () => {
  const openScope = useFaultScopes();

  it('classic queue: a task calling process.exit(1) on every run is dead-lettered after maxDeliveries, FAILURE stored; the others complete', async () => {
    const scope = openScope('poison-classic');
    const mix = { good: 100, poison: 2, maxDeliveries: 3 };
    await runPoisonCase(scope, mix, async ({ producer, good, poison, ids, crew }) => {
      for (const r of poison) {
        const error = await r.get({ timeoutMs: 45_000 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WorkerLostError);
        expect(error).toMatchObject({
          excModule: 'billiard.exceptions',
          excMessage: ['delivered 3 times without completing'],
        });
      }
      const end = await settle(producer, scope.queue, ids, 30_000);
      const runs = await scope.runs();
      const extra = runs.length - new Set(runs.map((r) => r.id)).size;
      console.log(
        `poison, classic queue, maxDeliveries 3: sent ${ids.length}, SUCCESS ${end.succeeded.size}, ` +
          `in .dead ${end.dead.size}, runs ${runs.length} (${extra} extra, ` +
          `${runs.filter((r) => r.redelivered).length} flagged redelivered), ` +
          `worker restarts ${crew.restarts}, lost ${end.lost.length}`,
      );
      expect(end.lost).toEqual([]);
      for (const r of poison) {
        expect(end.dead.get(r.id)).toEqual({
          by: 'worker',
          reason: 'delivered 3 times without completing',
        });
        expect(runs.filter((run) => run.id === r.id)).toHaveLength(3);
      }
      for (const r of good) expect(end.succeeded.has(r.id)).toBe(true);
      // Every repeat run was told it was a redelivery.
      expect(extra).toBe(runs.filter((r) => r.redelivered).length);
    });
  }, 60_000);

  it('quorum queue under a delivery-limit policy: every task ends SUCCESS or in <queue>.dead, none lost', async () => {
    const scope = openScope('poison-quorum', 'redis', 'quorum');
    // The worker's own cap is set past the broker's limit here, so the broker's fires.
    const mix = { good: 100, poison: 2, maxDeliveries: 100, deliveryLimit: 2 };
    await runPoisonCase(scope, mix, async ({ producer, poison, ids, crew }) => {
      const end = await settle(producer, scope.queue, ids, 45_000);
      const runs = await scope.runs();
      console.log(
        `poison, quorum delivery-limit 2: sent ${ids.length}, SUCCESS ${end.succeeded.size}, ` +
          `in .dead ${end.dead.size}, runs ${runs.length}, worker restarts ${crew.restarts}, ` +
          `lost ${end.lost.length}`,
      );
      expect(end.lost).toEqual([]);
      for (const r of poison) {
        expect(end.dead.get(r.id)).toMatchObject({ by: 'broker' });
        expect(end.dead.get(r.id)!.reason).toMatch(/delivery_limit/);
        // Delivered once, then twice more before the limit of 2 returns was passed.
        expect(runs.filter((run) => run.id === r.id)).toHaveLength(3);
      }
    });
  }, 60_000);

  it("quorum queue: the worker's cap (3) fires before the broker's delivery limit (5) and stores FAILURE", async () => {
    const scope = openScope('poison-quorum-cap', 'redis', 'quorum');
    const mix = { good: 20, poison: 1, maxDeliveries: 3, deliveryLimit: 5 };
    await runPoisonCase(scope, mix, async ({ producer, good, poison, ids }) => {
      await expect(poison[0]!.get({ timeoutMs: 45_000 })).rejects.toBeInstanceOf(WorkerLostError);
      const end = await settle(producer, scope.queue, ids, 30_000);
      expect(end.lost).toEqual([]);
      expect(end.dead.get(poison[0]!.id)).toEqual({
        by: 'worker',
        reason: 'delivered 3 times without completing',
      });
      expect((await scope.runs()).filter((r) => r.id === poison[0]!.id)).toHaveLength(3);
      for (const r of good) expect(end.succeeded.has(r.id)).toBe(true);
    });
  }, 60_000);
});
