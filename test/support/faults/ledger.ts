import type { AsyncResult } from '@conveyor/core';

/** One run of a task, as the task logged it from inside the worker. */
export interface RunRecord {
  id: string;
  /** `taskContext().redelivered` of that run. */
  redelivered: boolean;
  /** The worker process that ran it. */
  pid: number;
}

/** Parses the run log lines `<id> <0|1> <pid>` written by `fixtures/fault-app.js`. */
export function parseRuns(lines: string[]): RunRecord[] {
  return lines.map((line) => {
    const [id, redelivered, pid] = line.split(' ');
    return { id: id!, redelivered: redelivered === '1', pid: Number(pid) };
  });
}

/** The counts of one fault case. */
export interface CaseCounts {
  label: string;
  /** Tasks whose publish the broker confirmed. */
  sent: number;
  /** Publishes that failed loudly (rejected), so were never counted as sent. */
  publishFailed: number;
  /** Sent tasks whose SUCCESS result was read back. */
  stored: number;
  /** Sent tasks with no result: never allowed. */
  lost: number;
  /** Task runs logged by the workers. */
  runs: number;
  /** Runs beyond the first of each task. */
  duplicates: number;
  /** Runs of a message the broker flagged as redelivered. */
  redeliveredRuns: number;
  /**
   * Duplicates not explained by a redelivery: runs with `redelivered: false` beyond the first
   * of a task. Only an extra copy of the message in the queue (a publish written twice) can
   * explain one; see `allowedCopies`.
   */
  unexplained: number;
  /** Extra copies of messages known to be in the queue (publish duplicates), else 0. */
  allowedCopies: number;
  /** Runs of ids that were never sent. */
  strangers: number;
}

/**
 * Sent task ids and their outcomes, for one fault case: what was sent, what was stored, and,
 * from the workers' run log, what ran how often and whether each repeat was a redelivery.
 */
/** Whether a result is what `faults.record` returns (`{ n, pid }`): what `collect` counts as stored. */
export const returnedItsNumber = (value: unknown): boolean =>
  typeof (value as { n?: unknown }).n === 'number';

export class Ledger {
  private readonly sentIds = new Set<string>();
  private readonly storedIds = new Set<string>();
  private readonly results = new Map<string, AsyncResult<unknown>>();
  private failedPublishes = 0;
  /** Distinct errors of failed publishes, for diagnosis. */
  readonly publishErrors = new Set<string>();
  /** Extra copies of messages known to have been written (publish duplicates). */
  allowedCopies = 0;

  constructor(readonly label: string) {}

  get sent(): number {
    return this.sentIds.size;
  }

  get ids(): string[] {
    return [...this.sentIds];
  }

  /** Records the outcome of a publish: a confirmed one is sent; a rejected one failed loudly. */
  async track(publish: Promise<AsyncResult<unknown>>): Promise<void> {
    try {
      const result = await publish;
      this.sentIds.add(result.id);
      this.results.set(result.id, result);
    } catch (error) {
      this.failedPublishes += 1;
      this.publishErrors.add(`${(error as Error).name}: ${(error as Error).message}`);
    }
  }

  /** Marks a task id as sent when it was published some other way (raw amqplib). */
  sentRaw(id: string, result: AsyncResult<unknown>): void {
    this.sentIds.add(id);
    this.results.set(id, result);
  }

  /**
   * Waits for every sent task's result (all waits at once, each bounded by `timeoutMs`) and
   * records which arrived as SUCCESS with the expected value `check` accepts.
   */
  async collect(timeoutMs: number, check: (value: unknown) => boolean = () => true): Promise<void> {
    await Promise.all(
      [...this.results].map(async ([id, result]) => {
        try {
          if (check(await result.get({ timeoutMs }))) this.storedIds.add(id);
        } catch {
          // Counted as lost below.
        }
      }),
    );
  }

  /** Ids sent but not stored. */
  lostIds(): string[] {
    return this.ids.filter((id) => !this.storedIds.has(id));
  }

  /** The counts, from the run log; printed for the README's table. */
  tally(runs: RunRecord[]): CaseCounts {
    const byId = new Map<string, RunRecord[]>();
    let strangers = 0;
    for (const run of runs) {
      if (!this.sentIds.has(run.id)) strangers += 1;
      const list = byId.get(run.id) ?? [];
      list.push(run);
      byId.set(run.id, list);
    }
    let duplicates = 0;
    let unexplained = 0;
    for (const list of byId.values()) {
      duplicates += list.length - 1;
      // A message copy is delivered unflagged at most once; each further unflagged run needs a copy.
      unexplained += Math.max(0, list.filter((r) => !r.redelivered).length - 1);
    }
    const counts: CaseCounts = {
      label: this.label,
      sent: this.sent,
      publishFailed: this.failedPublishes,
      stored: this.storedIds.size,
      lost: this.sent - this.storedIds.size,
      runs: runs.length,
      duplicates,
      redeliveredRuns: runs.filter((r) => r.redelivered).length,
      unexplained,
      allowedCopies: this.allowedCopies,
      strangers,
    };
    printCounts(counts);
    if (this.publishErrors.size > 0)
      console.log(
        `[fault-counts] ${this.label}: publish errors ${[...this.publishErrors].slice(0, 3).join(' | ')}`,
      );
    return counts;
  }
}

/** One line per case, for the README's table of fault counts. */
export function printCounts(c: CaseCounts): void {
  console.log(
    `[fault-counts] ${c.label} | sent ${c.sent} | stored ${c.stored} | lost ${c.lost} | runs ${c.runs} | ` +
      `duplicates ${c.duplicates} (unexplained ${c.unexplained}, publish copies ${c.allowedCopies}) | ` +
      `redelivered runs ${c.redeliveredRuns} | publishes failed ${c.publishFailed}`,
  );
}

/**
 * The assertions every fault case makes: nothing lost, every duplicate explained by a
 * redelivery (or a known extra copy), nothing run that was not sent.
 */
export function expectSound(c: CaseCounts, lostIds: string[] = []): void {
  expect({ lost: c.lost, lostIds: lostIds.slice(0, 5) }).toEqual({ lost: 0, lostIds: [] });
  expect(c.stored).toBe(c.sent);
  expect(c.unexplained).toBeLessThanOrEqual(c.allowedCopies);
  expect(c.strangers).toBe(0);
  // Every sent task ran at least once.
  expect(c.runs - c.duplicates).toBe(c.sent);
}
