import { sleep } from '@conveyor/core/testing';
import type { TcpProxy } from '../tcp-proxy';
import type { FaultScope } from './fault-scope';
import { expectSound, returnedItsNumber, type CaseCounts, type Ledger } from './ledger';
import type { WorkerProcess } from './worker-process';

/** A loop that cuts every connection through a proxy at random intervals until stopped. */
export class Cutter {
  /** Cuts made so far. */
  cuts = 0;
  private running = true;
  private readonly loop: Promise<void>;

  /** Cuts `proxy` every `minMs`..`maxMs` (uniformly random), starting after the first interval. */
  constructor(
    private readonly proxy: TcpProxy,
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.loop = this.run();
  }

  /** Stops cutting; resolves with the number of cuts. */
  async stop(): Promise<number> {
    this.running = false;
    await this.loop;
    return this.cuts;
  }

  private async run(): Promise<void> {
    while (this.running) {
      await sleep(this.minMs + Math.random() * (this.maxMs - this.minMs));
      if (!this.running) return;
      this.proxy.cut();
      this.cuts += 1;
    }
  }
}

/** Runs `work` with `proxy` cut every `minMs`..`maxMs`; returns its value and the cut count. */
export async function whileCutting<T>(
  proxy: TcpProxy,
  minMs: number,
  maxMs: number,
  work: () => Promise<T>,
): Promise<{ value: T; cuts: number }> {
  const cutter = new Cutter(proxy, minMs, maxMs);
  try {
    const value = await work();
    return { value, cuts: cutter.cuts };
  } finally {
    await cutter.stop();
  }
}

/** Longest time a case cuts connections while its tasks complete. */
export const CHAOS_WINDOW_MS = 25_000;
/** Time the tasks then get, without cuts, to complete. */
export const SETTLE_MS = 30_000;
/** The timeout of the collection {@link cutWhile} watches: the chaos window, then the settling. */
export const COLLECT_THROUGH_CUTS_MS = CHAOS_WINDOW_MS + SETTLE_MS;

/**
 * Cuts `proxy` every `minMs`..`maxMs` while `collecting` runs, for at most `windowMs`; then
 * stops cutting and waits for `collecting`. Returns the cut count.
 *
 * Cuts every few hundred milliseconds can keep a client reconnecting most of the time, so on a
 * loaded machine the tasks may not all finish inside the window. A loss is a task that never
 * completes, not one that completes once the cuts have stopped: give `collecting` a timeout of
 * {@link COLLECT_THROUGH_CUTS_MS}.
 */
export async function cutWhile(
  proxy: TcpProxy,
  minMs: number,
  maxMs: number,
  collecting: Promise<unknown>,
  windowMs = CHAOS_WINDOW_MS,
): Promise<number> {
  const { cuts } = await whileCutting(proxy, minMs, maxMs, () =>
    Promise.race([collecting, sleep(windowMs)]),
  );
  await collecting;
  return cuts;
}

/**
 * The body of a case that cuts the connection of a running `worker`: cuts `proxy` every
 * `minMs`..`maxMs` while `ledger` collects every task's result (see {@link cutWhile}), tallies
 * the runs `scope` logged, and asserts what every such case asserts: the cuts landed (more than
 * 3), nothing was lost ({@link expectSound}) and the worker still runs. On a loss, `explain`
 * first prints what can be told of it (by default the worker's last output). Returns the counts,
 * for the case's own checks.
 */
export async function cutWorkerThroughCollection(
  proxy: TcpProxy,
  [minMs, maxMs]: [number, number],
  ledger: Ledger,
  scope: FaultScope,
  worker: WorkerProcess,
  explain: () => Promise<string> = async () => worker.report(),
): Promise<CaseCounts> {
  const cuts = await cutWhile(
    proxy,
    minMs,
    maxMs,
    ledger.collect(COLLECT_THROUGH_CUTS_MS, returnedItsNumber),
  );
  const counts = ledger.tally(await scope.runs());
  expect(cuts).toBeGreaterThan(3);
  if (counts.lost > 0) console.log(`[fault-diagnosis] ${await explain()}`);
  expectSound(counts, ledger.lostIds());
  expect(worker.alive).toBe(true);
  return counts;
}
