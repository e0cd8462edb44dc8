import type { ResultMeta } from '@conveyor/core';

/** What the poller needs from the database: the ready metas among some task ids. */
export type FetchReady = (taskIds: string[]) => Promise<Map<string, ResultMeta>>;

/** Settings of a {@link ResultPoller}. */
export interface ResultPollerOptions {
  fetchReady: FetchReady;
  minIntervalMs: number;
  maxIntervalMs: number;
  /** Most ids per query; more pending ids take several queries in a tick. */
  chunkSize: number;
  /** Called when a poll fails; the poller keeps going, backing off. */
  onError: (error: unknown) => void;
  /** Called when the first waiter arrives, e.g. to start a LISTEN connection. */
  onFirstWaiter?: () => void;
}

type Wake = (meta: ResultMeta | undefined) => void;

/**
 * One poller per backend instance serves every pending wait: each tick asks for all pending ids
 * in one query, resolves the waiters whose row is final, and backs off from `minIntervalMs` to
 * `maxIntervalMs` while nothing changes. A new waiter or a NOTIFY brings the next tick forward.
 *
 * Race freedom: a waiter is registered before any tick that can include it starts, and every
 * tick reads committed rows afresh, so a result committed at any time after `wait()` was called
 * is seen by the next tick at the latest.
 */
export class ResultPoller {
  private readonly waiters = new Map<string, Set<Wake>>();
  private interval: number;
  private timer?: NodeJS.Timeout;
  private nextTickAt = Number.POSITIVE_INFINITY;
  private polling = false;
  /** Set when something asked for a prompt tick while one was running. */
  private hurry = false;
  private closed = false;
  private started = false;

  constructor(private readonly options: ResultPollerOptions) {
    this.interval = options.minIntervalMs;
  }

  /** Number of distinct task ids being waited for. */
  get pendingTasks(): number {
    return this.waiters.size;
  }

  /** Resolves with the ready meta, or undefined after `timeoutMs` or on {@link close}. */
  wait(taskId: string, timeoutMs: number): Promise<ResultMeta | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let set = this.waiters.get(taskId);
      if (!set) {
        set = new Set();
        this.waiters.set(taskId, set);
      }
      const waiters = set;
      const wake: Wake = (meta) => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(taskId) === waiters) this.waiters.delete(taskId);
        resolve(meta);
      };
      const timer = setTimeout(() => wake(undefined), Math.max(0, timeoutMs));
      waiters.add(wake);
      if (!this.started) {
        this.started = true;
        this.options.onFirstWaiter?.();
      }
      this.wake();
    });
  }

  /** Brings the next tick forward to the short interval (a new waiter, a notification). */
  wake(): void {
    if (this.closed) return;
    this.interval = this.options.minIntervalMs;
    if (this.polling) {
      this.hurry = true;
      return;
    }
    this.schedule(this.options.minIntervalMs);
  }

  /** A NOTIFY for a task: worth a prompt tick only if someone here waits for it. */
  notified(taskId: string): void {
    if (this.waiters.has(taskId)) this.wake();
  }

  /** Ends every pending wait with undefined and stops polling. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const all = [...this.waiters.values()].flatMap((set) => [...set]);
    this.waiters.clear();
    for (const wake of all) wake(undefined);
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.waiters.size === 0) return;
    const at = Date.now() + delayMs;
    // Never postpone a tick that is already due sooner.
    if (this.timer && at >= this.nextTickAt) return;
    clearTimeout(this.timer);
    this.nextTickAt = at;
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.nextTickAt = Number.POSITIVE_INFINITY;
    if (this.closed || this.waiters.size === 0) return;
    this.polling = true;
    this.hurry = false;
    let resolvedAny = false;
    try {
      const ids = [...this.waiters.keys()];
      for (let start = 0; start < ids.length; start += this.options.chunkSize) {
        const ready = await this.options.fetchReady(
          ids.slice(start, start + this.options.chunkSize),
        );
        if (this.closed) return;
        for (const [taskId, meta] of ready) {
          const set = this.waiters.get(taskId);
          if (!set) continue;
          this.waiters.delete(taskId);
          resolvedAny = true;
          // Each waiter gets its own copy, as each would from its own read.
          let copy = false;
          for (const wake of [...set]) {
            wake(copy ? structuredClone(meta) : meta);
            copy = true;
          }
        }
      }
    } catch (error) {
      if (!this.closed) this.options.onError(error);
    } finally {
      this.polling = false;
    }
    if (resolvedAny || this.hurry) {
      this.interval = this.options.minIntervalMs;
    } else {
      this.interval = Math.min(this.interval * 2, this.options.maxIntervalMs);
    }
    this.hurry = false;
    this.schedule(this.interval);
  }
}
