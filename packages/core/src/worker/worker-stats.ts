/** What `inspect stats` reports, gathered by the worker. */
export interface WorkerStatsInput {
  totals: ReadonlyMap<string, number>;
  startedAtMs: number;
  concurrency: number;
  prefetch: number;
  clock: number;
  events: { sent: number; dropped: number };
}

/**
 * A Conveyor worker's `inspect stats` reply, in the shape Celery's workers give (`total`, `pid`,
 * `clock`, `uptime`, `pool`, `prefetch_count`, `rusage`), plus what it did with its events.
 */
export function workerStats(input: WorkerStatsInput): Record<string, unknown> {
  const usage = process.resourceUsage();
  return {
    total: Object.fromEntries(input.totals),
    pid: process.pid,
    clock: String(input.clock),
    uptime: Math.floor((Date.now() - input.startedAtMs) / 1000),
    pool: {
      'max-concurrency': input.concurrency,
      processes: [process.pid],
      'max-tasks-per-child': null,
      'put-guarded-by-semaphore': false,
      timeouts: [],
    },
    prefetch_count: input.prefetch,
    rusage: {
      utime: usage.userCPUTime / 1e6,
      stime: usage.systemCPUTime / 1e6,
      maxrss: usage.maxRSS,
      minflt: usage.minorPageFault,
      majflt: usage.majorPageFault,
      nvcsw: usage.voluntaryContextSwitches,
      nivcsw: usage.involuntaryContextSwitches,
    },
    events: input.events,
    sw_ident: 'conveyor',
    node: process.version,
  };
}
