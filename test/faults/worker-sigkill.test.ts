import { randomUUID } from 'node:crypto';
import { sleep } from '@conveyor/core/testing';
import { buildPackages } from './support/build';
import { FaultScope } from './support/fault-scope';
import {
  expectSound,
  Ledger,
  printCounts,
  type CaseCounts,
  type RunRecord,
} from './support/ledger';
import { killAllWorkers, WorkerProcess } from './support/worker-process';

const RUNS = 20;
const TASKS = 500;

/** Prints where runs of ids this run did not send came from: which run sent them, who ran them. */
function explainStrangers(
  runs: RunRecord[],
  ledgers: Ledger[],
  workers: Array<{ killed: number; next: number }>,
  all: RunRecord[],
): void {
  const current = ledgers[ledgers.length - 1]!;
  const sentIn = (id: string): number => ledgers.findIndex((l) => l.ids.includes(id)) + 1;
  const strangers = runs.filter((r) => !current.ids.includes(r.id));
  const lines = strangers.slice(0, 10).map((r) => {
    const history = all
      .filter((x) => x.id === r.id)
      .map((x) => `pid ${x.pid}${x.redelivered ? ' (redelivered)' : ''}`)
      .join(', ');
    return `${r.id}: sent in run ${sentIn(r.id)}; runs: ${history}`;
  });
  console.log(
    `[fault-diagnosis] ${strangers.length} runs of tasks sent in earlier runs\n` +
      `workers (killed → next): ${workers.map((w) => `${w.killed} → ${w.next}`).join(', ')}\n` +
      lines.join('\n'),
  );
}

describe('faults: worker SIGKILL', () => {
  let scope: FaultScope;

  beforeAll(() => buildPackages(), 120_000);
  afterEach(async () => {
    await killAllWorkers();
    await scope.cleanup();
  });

  it(`${RUNS} runs of ${TASKS} tasks, each with a worker SIGKILLed at a random point and a fresh one taking over: every task has a result, every repeat was a redelivery`, async () => {
    scope = new FaultScope('sigkill');
    const producer = scope.producer();
    const settings = scope.workerEnv({ concurrency: 50, prefetchMultiplier: 4 });
    let worker = await WorkerProcess.start(settings);
    const total: CaseCounts[] = [];
    const ledgers: Ledger[] = [];
    /** The worker killed in each run and the one started after it. */
    const workers: Array<{ killed: number; next: number }> = [];
    let logged = 0;
    let lastKilled: WorkerProcess | undefined;

    for (let run = 0; run < RUNS; run += 1) {
      const ledger = new Ledger(`SIGKILL run ${run + 1}`);
      ledgers.push(ledger);
      const sending = Promise.all(
        Array.from({ length: TASKS }, (_, n) =>
          ledger.track(producer.send('faults.record', [n, 0], { taskId: randomUUID() })),
        ),
      );
      // Kill once a random share of this run's tasks has started (0..99%), so kills land
      // before, between and during runs, results and acks.
      const target = logged + Math.floor(Math.random() * TASKS);
      while ((await scope.runCount()) < target && worker.alive) await sleep(2);
      const killed = worker.pid;
      lastKilled = worker;
      const exit = await worker.killNow();
      expect(exit.signal).toBe('SIGKILL');
      worker = await WorkerProcess.start(settings);
      workers.push({ killed, next: worker.pid });
      await sending;
      expect(ledger.sent).toBe(TASKS);
      await ledger.collect(30_000, (value) => typeof (value as { n?: unknown }).n === 'number');
      const runs = (await scope.runs()).slice(logged);
      logged += runs.length;
      const counts = ledger.tally(runs);
      if (counts.strangers > 0) {
        explainStrangers(runs, ledgers, workers, await scope.runs());
        console.log(
          `[fault-diagnosis] output of the worker killed in this run:\n${lastKilled?.output.slice(-3_000)}`,
        );
      }
      expectSound(counts, ledger.lostIds());
      total.push(counts);
    }

    const sum = (key: keyof CaseCounts): number =>
      total.reduce((acc, c) => acc + (c[key] as number), 0);
    printCounts({
      label: `worker SIGKILL, ${RUNS} runs x ${TASKS} tasks (total)`,
      sent: sum('sent'),
      publishFailed: sum('publishFailed'),
      stored: sum('stored'),
      lost: sum('lost'),
      runs: sum('runs'),
      duplicates: sum('duplicates'),
      redeliveredRuns: sum('redeliveredRuns'),
      unexplained: sum('unexplained'),
      allowedCopies: 0,
      strangers: sum('strangers'),
    });
    expect(sum('lost')).toBe(0);
    expect(sum('unexplained')).toBe(0);
  }, 150_000);
});
