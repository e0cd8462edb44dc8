import { DeadLetters, type AsyncResult, type Conveyor } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { withDeliveryLimit } from '../support/quorum-policy';
import { buildPackages } from './support/build';
import { FaultScope } from './support/fault-scope';
import { killAllWorkers, WorkerCrew } from './support/worker-process';

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
});
