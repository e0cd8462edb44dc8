import { sleep } from '@conveyor/core/testing';
import type { TcpProxy } from '../tcp-proxy';
import type { FaultScope } from './fault-scope';
import { returnedItsNumber, type CaseCounts, type Ledger } from './ledger';

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
 * The body most cut cases share: cuts `proxy` every `minMs`..`maxMs` while `ledger` collects
 * every task's result (see {@link cutWhile}), then tallies the runs `scope` logged.
 */
export async function cutThroughCollection(
  proxy: TcpProxy,
  [minMs, maxMs]: [number, number],
  ledger: Ledger,
  scope: FaultScope,
): Promise<{ cuts: number; counts: CaseCounts }> {
  const cuts = await cutWhile(
    proxy,
    minMs,
    maxMs,
    ledger.collect(COLLECT_THROUGH_CUTS_MS, returnedItsNumber),
  );
  return { cuts, counts: ledger.tally(await scope.runs()) };
}
