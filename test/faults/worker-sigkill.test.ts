import { randomUUID } from 'node:crypto';
import { sleep, waitFor } from '@conveyor/core/testing';
import { readyCount, unacked } from '../support/rabbitmq';
import { useFaultScopes } from '../support/faults/fault-scope';
import {
  expectSound,
  Ledger,
  returnedItsNumber,
  printCounts,
  type CaseCounts,
} from '../support/faults/ledger';
import { WorkerProcess } from '../support/faults/worker-process';

const RUNS = 20;
const TASKS = 500;

describe('faults: worker SIGKILL', () => {
  const openScope = useFaultScopes();

  it(`${RUNS} runs of ${TASKS} tasks, each with a worker SIGKILLed at a random point and a fresh one taking over: every task has a result, every repeat was a redelivery`, async () => {
    const scope = openScope('sigkill');
    const producer = scope.producer();
    const settings = scope.workerEnv({ concurrency: 50, prefetchMultiplier: 4 });
    let worker = await WorkerProcess.start(settings);
    const ledgers: Ledger[] = [];

    for (let run = 0; run < RUNS; run += 1) {
      const ledger = new Ledger(`SIGKILL run ${run + 1}`);
      ledgers.push(ledger);
      const started = await scope.runCount();
      const sending = Promise.all(
        Array.from({ length: TASKS }, (_, n) =>
          ledger.track(producer.send('faults.record', [n, 0], { taskId: randomUUID() })),
        ),
      );
      // Kill once a random share of this run's tasks has started (0..99%), so kills land
      // before, between and during runs, results and acks.
      const target = started + Math.floor(Math.random() * TASKS);
      while ((await scope.runCount()) < target && worker.alive) await sleep(2);
      const exit = await worker.killNow();
      expect(exit.signal).toBe('SIGKILL');
      worker = await WorkerProcess.start(settings);
      await sending;
      expect(ledger.sent).toBe(TASKS);
      await ledger.collect(30_000, returnedItsNumber);
    }

    // A task whose result was stored but whose ack died with its worker comes back to the next
    // worker and runs again, possibly after every result of its run was in, even during a later
    // run. So runs are counted by task id once the broker holds no message at all.
    await waitFor(
      async () => (await readyCount(scope.queue)) === 0 && (await unacked(scope.queue)) === 0,
      'the broker to hold no message',
      30_000,
    );
    const runs = await scope.runs();
    const total: CaseCounts[] = [];
    for (const ledger of ledgers) {
      const sent = new Set(ledger.ids);
      const counts = ledger.tally(runs.filter((r) => sent.has(r.id)));
      expectSound(counts, ledger.lostIds());
      total.push(counts);
    }
    const everySent = new Set(ledgers.flatMap((l) => l.ids));
    const strangers = runs.filter((r) => !everySent.has(r.id));

    const sum = (key: keyof CaseCounts): number =>
      total.reduce((acc, c) => acc + (c[key] as number), 0);
    printCounts({
      label: `worker SIGKILL, ${RUNS} runs x ${TASKS} tasks (total)`,
      sent: sum('sent'),
      publishFailed: sum('publishFailed'),
      stored: sum('stored'),
      lost: sum('lost'),
      runs: runs.length,
      duplicates: sum('duplicates'),
      redeliveredRuns: sum('redeliveredRuns'),
      unexplained: sum('unexplained'),
      allowedCopies: 0,
      strangers: strangers.length,
    });
    expect(strangers).toEqual([]);
    expect(sum('lost')).toBe(0);
    expect(sum('unexplained')).toBe(0);
  }, 150_000);
});
