import { DeadLetters } from '@conveyor/core';
import { AMQP_URL } from '../support/services';
import { whileCutting } from '../support/faults/chaos';
import { deadLetterTasks } from '../support/faults/dead-letters';
import { useFaultScopes } from '../support/faults/fault-scope';
import { WorkerProcess } from '../support/faults/worker-process';

const TASKS = 300;

describe('faults: replaying dead letters while the RabbitMQ connection is cut', () => {
  const openScope = useFaultScopes();

  it('replay --all: every dead letter ends replayed and SUCCESS, or still in <queue>.dead; none lost', async () => {
    const scope = openScope('replay-cut');
    const direct = scope.producer();
    const sent = await deadLetterTasks(direct, scope.queue, TASKS);
    await Promise.all([
      WorkerProcess.start(scope.workerEnv({ concurrency: 20 })),
      WorkerProcess.start(scope.workerEnv({ concurrency: 20 })),
    ]);

    const proxy = await scope.proxyTo(AMQP_URL);
    const through = scope.producer({ amqpUrl: proxy.rewrite(AMQP_URL) });
    const dlq = new DeadLetters({ transport: through.transport, backend: through.backend });
    let attempts = 0;
    let replayed = 0;
    let kept = 0;
    const { cuts } = await whileCutting(proxy, [100, 400], async () => {
      for (;;) {
        attempts += 1;
        try {
          const report = await dlq.replay(scope.queue, { all: true });
          replayed += report.replayed.length;
          kept += report.keptAfterReplay.length;
          return;
        } catch {
          // Cut mid-way (a publish or read that outlived its bound): run it again.
        }
      }
    });
    // Cuts over: each task has its SUCCESS, or its dead letter is still there.
    const stillDead = new Set(
      (
        await new DeadLetters({ transport: direct.transport }).list(scope.queue, { limit: 10_000 })
      ).items.map((d) => d.id),
    );
    // Read through the second app: the first still holds the FAILUREs it was told of moments
    // after sending (a Redis backend keeps those for `watchOnSendMs`, for the first get()).
    const outcomes = await Promise.all(
      sent.map(async (id) => {
        const meta = await through.backend!.waitForReady(id, stillDead.has(id) ? 1_000 : 30_000);
        return { id, success: meta?.status === 'SUCCESS', dead: stillDead.has(id) };
      }),
    );
    const succeeded = outcomes.filter((o) => o.success).length;
    const duplicates = outcomes.filter((o) => o.success && o.dead).length;
    const lost = outcomes.filter((o) => !o.success && !o.dead);
    const runs = await scope.runs();
    console.log(
      `replay --all under cuts: dead letters ${TASKS}, replay attempts ${attempts}, cuts ${cuts}, ` +
        `replayed ${replayed} (${kept} kept in .dead after a lost ack), SUCCESS ${succeeded}, ` +
        `still in .dead ${stillDead.size} (${duplicates} of them also SUCCESS), runs ${runs.length}, ` +
        `lost ${lost.length}`,
    );
    expect(lost).toEqual([]);
    expect(cuts).toBeGreaterThan(0);
  }, 60_000);
});
