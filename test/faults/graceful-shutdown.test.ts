import { hostname } from 'node:os';
import type { Conveyor } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { useFaultScopes } from '../support/faults/fault-scope';
import { expectSound, Ledger, returnedItsNumber } from '../support/faults/ledger';
import { WorkerProcess, type Exit } from '../support/faults/worker-process';

describe('faults: graceful shutdown under load with a second worker taking over', () => {
  const openScope = useFaultScopes();

  /**
   * 600 tasks of 100 ms, and a first worker (20 × 4) that has run 150 of them: the load under
   * which `stop` ends the first worker, before a second one starts.
   */
  async function stopUnderLoad(
    label: string,
    what: string,
    stop: (first: WorkerProcess, producer: Conveyor) => Promise<Exit>,
  ): Promise<void> {
    const scope = openScope(label);
    const ledger = new Ledger(`${what} under load, 600 tasks`);
    const producer = scope.producer();
    await Promise.all(
      Array.from({ length: 600 }, (_, n) => ledger.track(producer.send('faults.record', [n, 100]))),
    );
    const first = await WorkerProcess.start(
      scope.workerEnv({ concurrency: 20, prefetchMultiplier: 4, shutdownTimeoutMs: 10_000 }),
    );
    await waitFor(async () => (await scope.runCount()) >= 150, '150 runs on the first worker');
    const stopping = stop(first, producer);
    const second = await WorkerProcess.start(
      scope.workerEnv({ concurrency: 20, prefetchMultiplier: 4 }),
    );
    // 0: every running task finished within the shutdown timeout.
    expect(await stopping).toEqual({ code: 0, signal: null });

    await ledger.collect(30_000, returnedItsNumber);
    const runs = await scope.runs();
    const counts = ledger.tally(runs);
    expectSound(counts, ledger.lostIds());
    // A graceful stop finishes what it started: nothing it ran is run again.
    expect(counts.duplicates).toBe(0);
    expect(runs.some((r) => r.pid === first.pid)).toBe(true);
    expect(runs.some((r) => r.pid === second.pid)).toBe(true);
  }

  it('SIGTERM while 600 tasks of 100 ms flow: the running ones finish, the prefetched go back, the second worker runs the rest; zero lost', async () => {
    await stopUnderLoad('graceful', 'graceful shutdown (SIGTERM)', (first) => first.terminate());
  }, 60_000);

  it("Celery's shutdown command (celery.pidbox, addressed to the first worker) while 600 tasks of 100 ms flow: as SIGTERM, the second worker runs the rest; zero lost", async () => {
    await stopUnderLoad('remote-shutdown', 'remote shutdown command', async (first, producer) => {
      // Addressed by its default name, so no other test's worker on this broker hears it.
      const name = `conveyor-${first.pid}@${hostname()}`;
      const replies = await producer.control.shutdown({
        destination: [name],
        reply: true,
        timeoutMs: 5_000,
      });
      expect(replies).toEqual([{ [name]: { ok: 'shutting down' } }]);
      return first.exited;
    });
  }, 60_000);

  it('SIGTERM with tasks longer than the shutdown timeout: the aborted ones are requeued and rerun (flagged redelivered) on the second worker; zero lost', async () => {
    const scope = openScope('graceful-timeout');
    const ledger = new Ledger('graceful shutdown past its timeout, 100 tasks of 5 s');
    const producer = scope.producer();
    await Promise.all(
      Array.from({ length: 100 }, (_, n) =>
        // Long enough that all 40 still run when the 300 ms shutdown timeout ends, however far
        // apart their starts were on a loaded machine.
        ledger.track(producer.send('faults.record', [n, 5_000])),
      ),
    );
    const first = await WorkerProcess.start(
      scope.workerEnv({ concurrency: 40, prefetchMultiplier: 1, shutdownTimeoutMs: 300 }),
    );
    await waitFor(
      async () => (await scope.runCount()) >= 40,
      '40 tasks running on the first worker',
    );
    const stopping = first.terminate();
    const second = await WorkerProcess.start(
      scope.workerEnv({ concurrency: 60, prefetchMultiplier: 1 }),
    );
    const exit = await stopping;
    // 1: the shutdown timeout passed with tasks still running; they were aborted and requeued.
    expect(exit).toEqual({ code: 1, signal: null });

    await ledger.collect(30_000, returnedItsNumber);
    const runs = await scope.runs();
    const counts = ledger.tally(runs);
    expectSound(counts, ledger.lostIds());
    expect(counts.duplicates).toBeGreaterThanOrEqual(40);
    const reruns = runs.filter((r) => r.pid === second.pid && r.redelivered);
    expect(reruns.length).toBeGreaterThanOrEqual(40);
  }, 60_000);
});
