import { sleep } from '@conveyor/core/testing';
import type { TcpProxy } from '../tcp-proxy';
import type { FaultScope } from './fault-scope';
import { expectSound, returnedItsNumber, type CaseCounts, type Ledger } from './ledger';
import type { WorkerProcess } from './worker-process';

/** The bounds, in milliseconds, of the random wait before each cut. */
export type CutInterval = [minMs: number, maxMs: number];

/**
 * What a cut waits for after its interval, while `cutting()` holds (it stops waiting once the
 * cutting stops); {@link nextRunOf} is one.
 */
export type CutGate = (cutting: () => boolean) => Promise<void>;

/** A loop that cuts every connection through a proxy at random intervals until stopped. */
export class Cutter {
  /** Cuts made so far. */
  cuts = 0;
  private running = true;
  private readonly loop: Promise<void>;

  /**
   * Cuts `proxy` every `minMs`..`maxMs` (uniformly random), starting after the first interval;
   * each cut waits for `gate` too, if given.
   */
  constructor(
    private readonly proxy: TcpProxy,
    private readonly interval: CutInterval,
    private readonly gate?: CutGate,
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
    const [minMs, maxMs] = this.interval;
    while (this.running) {
      await sleep(minMs + Math.random() * (maxMs - minMs));
      await this.gate?.(() => this.running);
      if (!this.running) return;
      this.proxy.cut();
      this.cuts += 1;
    }
  }
}

/**
 * A {@link CutGate} that opens as soon as `scope` logs a run after the gate was reached: a cut
 * then lands while that run (a task that sleeps after logging) still has its ack to come, however
 * long a loaded machine takes to reconnect between cuts.
 */
export function nextRunOf(scope: FaultScope): CutGate {
  return async (cutting) => {
    const before = await scope.runCount();
    while (cutting() && (await scope.runCount()) <= before) await sleep(5);
  };
}

/** Runs `work` with `proxy` cut every `interval` (see {@link Cutter}); returns its value and the cut count. */
export async function whileCutting<T>(
  proxy: TcpProxy,
  interval: CutInterval,
  work: () => Promise<T>,
  gate?: CutGate,
): Promise<{ value: T; cuts: number }> {
  const cutter = new Cutter(proxy, interval, gate);
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
 * Cuts `proxy` every `interval` (each cut after `gate`, if given) while `collecting` runs, for at
 * most `windowMs`; then stops cutting and waits for `collecting`. Returns the cut count.
 *
 * Cuts every few hundred milliseconds can keep a client reconnecting most of the time, so on a
 * loaded machine the tasks may not all finish inside the window. A loss is a task that never
 * completes, not one that completes once the cuts have stopped: give `collecting` a timeout of
 * {@link COLLECT_THROUGH_CUTS_MS}.
 */
export async function cutWhile(
  proxy: TcpProxy,
  interval: CutInterval,
  collecting: Promise<unknown>,
  { windowMs = CHAOS_WINDOW_MS, gate }: { windowMs?: number; gate?: CutGate } = {},
): Promise<number> {
  // Cleared once the cutting stops, so that the window does not outlive a case that ends sooner.
  let windowTimer: NodeJS.Timeout | undefined;
  const windowEnds = new Promise((resolve) => (windowTimer = setTimeout(resolve, windowMs)));
  try {
    const { cuts } = await whileCutting(
      proxy,
      interval,
      () => Promise.race([collecting, windowEnds]),
      gate,
    );
    await collecting;
    return cuts;
  } finally {
    clearTimeout(windowTimer);
  }
}

/**
 * The body of a case that cuts the connection of a running `worker`: cuts `proxy` every
 * `interval` (each cut after `gate`, if given) while `ledger` collects every task's result (see
 * {@link cutWhile}), tallies the runs `scope` logged, and asserts what every such case asserts:
 * the cuts landed (more than 3), nothing was lost ({@link expectSound}) and the worker still
 * runs. On a loss, `explain` first prints what can be told of it (by default the worker's last
 * output). Returns the counts, for the case's own checks.
 */
export async function cutWorkerThroughCollection(
  proxy: TcpProxy,
  interval: CutInterval,
  ledger: Ledger,
  scope: FaultScope,
  worker: WorkerProcess,
  {
    explain = async () => worker.report(),
    gate,
  }: { explain?: () => Promise<string>; gate?: CutGate } = {},
): Promise<CaseCounts> {
  const collecting = ledger.collect(COLLECT_THROUGH_CUTS_MS, returnedItsNumber);
  const cuts = await cutWhile(proxy, interval, collecting, { gate });
  const counts = ledger.tally(await scope.runs());
  expect(cuts).toBeGreaterThan(3);
  if (counts.lost > 0) console.log(`[fault-diagnosis] ${await explain()}`);
  expectSound(counts, ledger.lostIds());
  expect(worker.alive).toBe(true);
  return counts;
}
