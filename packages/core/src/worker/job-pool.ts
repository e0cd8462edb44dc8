import type { Job } from './job';

/**
 * The jobs a worker holds once they may run: those waiting for a slot, in arrival order, and
 * those running. Starts waiting jobs while fewer than `concurrency` run, as Celery's pool does
 * with the requests its consumer hands it.
 */
export class JobPool {
  private maxConcurrency: number;
  private readonly waiting: Job[] = [];
  private readonly running = new Set<Job>();
  private finished = 0;
  /** Tasks started, by name (`inspect stats`). */
  readonly totals = new Map<string, number>();

  /**
   * @param canStart whether new jobs may start now (false once the worker is stopping)
   * @param warn told of a job whose processing threw, which is then given back
   */
  constructor(
    concurrency: number,
    private readonly canStart: () => boolean,
    private readonly warn: (error: Error) => void,
  ) {
    this.maxConcurrency = concurrency;
  }

  /** Jobs run at once. */
  get concurrency(): number {
    return this.maxConcurrency;
  }

  /** Jobs that ran to their end, whatever the outcome. */
  get processed(): number {
    return this.finished;
  }

  get runningCount(): number {
    return this.running.size;
  }

  get runningJobs(): readonly Job[] {
    return [...this.running];
  }

  get waitingJobs(): readonly Job[] {
    return this.waiting;
  }

  /** Queues a job; it starts at once if a slot is free. */
  add(job: Job): void {
    this.waiting.push(job);
    this.startWaiting();
  }

  /** A new concurrency: more jobs may start now; fewer only as running ones end. */
  resize(concurrency: number): void {
    this.maxConcurrency = concurrency;
    this.startWaiting();
  }

  /** Stops the running job of task `id`, if any; returns it. */
  terminate(id: string, reason: Error): Job | undefined {
    for (const job of this.running) {
      if (job.id !== id || !job.isRunning) continue;
      job.stop(reason);
      return job;
    }
    return undefined;
  }

  /** Gives every waiting job's message back unstarted (the worker is stopping); returns how many. */
  giveBackWaiting(): number {
    const waiting = this.waiting.splice(0);
    for (const job of waiting) job.giveBackUnstarted();
    return waiting.length;
  }

  /**
   * Gives the running jobs' messages back and stops them (a shutdown past its timeout); returns
   * how many tasks this aborted, and how many of their messages went back (see `Job.abandon`).
   */
  abandonRunning(reason: Error): { aborted: number; requeued: number } {
    const counts = { aborted: 0, requeued: 0 };
    for (const job of this.running) {
      const { aborted, requeued } = job.abandon(reason);
      if (aborted) counts.aborted += 1;
      if (requeued) counts.requeued += 1;
    }
    return counts;
  }

  /** Resolves true once no job runs, false if some still run after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const check = (): void => {
        if (this.running.size === 0) resolve(true);
        else if (Date.now() >= deadline) resolve(false);
        else setTimeout(check, Math.min(20, Math.max(1, deadline - Date.now())));
      };
      check();
    });
  }

  private startWaiting(): void {
    while (this.canStart() && this.running.size < this.maxConcurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running.add(job);
      const name = job.definition.name;
      this.totals.set(name, (this.totals.get(name) ?? 0) + 1);
      void job
        .process()
        .catch((error: unknown) => {
          // A bug must not take the process down with every task it holds: report it and give
          // the message back, unless it was settled already.
          this.warn(error instanceof Error ? error : new Error(String(error)));
          void job.settlement.requeueLater();
        })
        .finally(() => {
          this.running.delete(job);
          this.finished += 1;
          this.startWaiting();
        });
    }
  }
}
