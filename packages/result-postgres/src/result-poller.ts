import { afterDelay, type ResultMeta } from '@conveyor/core/plugin';

/** What the poller needs from the database: the ready metas among some task ids. */
export type FetchReady = (taskIds: string[]) => Promise<Map<string, ResultMeta>>;

/** Settings of a {@link ResultPoller}. */
export interface ResultPollerOptions {
  fetchReady: FetchReady;
  minIntervalMs: number;
  maxIntervalMs: number;
  /** Most ids per query; more ids take several queries in a tick. */
  chunkSize: number;
  /** Called when a poll fails; the poller keeps going, backing off. */
  onError: (error: unknown) => void;
  /** Called when the first waiter arrives, e.g. to start a LISTEN connection. */
  onFirstWaiter?: () => void;
}

type Wake = (meta: ResultMeta | undefined) => void;

/** Lateness tolerated on a timer before a due query is deferred to the next one. */
const DUE_SLACK_MS = 1;

/**
 * One poller per backend instance serves every pending wait, with two kinds of query, never
 * two at a time:
 *
 * - The **full poll** asks for every pending id (chunked) on a timer that backs off from
 *   `minIntervalMs` to `maxIntervalMs`. It is what guarantees delivery.
 * - A **check** asks only for the ids that need a prompt look: ids named by a NOTIFY (at once;
 *   notifications arriving together become one query), and, while notifications are being
 *   received, new waiters (after `minIntervalMs`, for a result stored before the wait began).
 *
 * While notifications are being received ({@link setListening}), the full poll is only a safety
 * net for lost notifications: it backs off to the ceiling and stays there, and what checks find
 * does not bring it forward, so its cost does not grow with the rate of results. Without
 * notifications (`notify: false`, listener down) a new waiter or a result the full poll found
 * brings the full poll back to `minIntervalMs`, as the only way to notice results soon.
 *
 * Race freedom: a waiter is registered before any query that can include it starts, and every
 * query reads committed rows afresh. A result committed after the last query that included the
 * id is found by the next full poll at the latest, and, while listening, by the check its NOTIFY
 * triggers (LISTEN was active before the flag was set, so such a commit notifies).
 */
export class ResultPoller {
  private readonly waiters = new Map<string, Set<Wake>>();
  /** Ids to look up by themselves at the next check. */
  private readonly checkIds = new Set<string>();
  private checkDueAt = Number.POSITIVE_INFINITY;
  private fullInterval: number;
  private fullDueAt = Number.POSITIVE_INFINITY;
  /** Bumped by every request to poll everything soon; a full poll then restarts its backoff. */
  private fullResets = 0;
  private listening = false;
  /** Cancels the scheduled tick, if any. */
  private timer?: () => void;
  private timerAt = Number.POSITIVE_INFINITY;
  private polling = false;
  private closed = false;
  private started = false;

  constructor(private readonly options: ResultPollerOptions) {
    this.fullInterval = options.minIntervalMs;
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
        cancelTimer();
        waiters.delete(wake);
        if (waiters.size === 0 && this.waiters.get(taskId) === waiters) this.waiters.delete(taskId);
        resolve(meta);
      };
      const cancelTimer = afterDelay(timeoutMs, () => wake(undefined));
      waiters.add(wake);
      if (!this.started) {
        this.started = true;
        this.options.onFirstWaiter?.();
      }
      const now = Date.now();
      if (this.listening) {
        // One look at this id soon (the result may be there already); later results notify.
        this.checkIds.add(taskId);
        this.checkDueAt = Math.min(this.checkDueAt, now + this.options.minIntervalMs);
        if (this.fullDueAt === Number.POSITIVE_INFINITY) {
          this.fullDueAt = now + this.fullInterval;
        }
      } else {
        this.resetFull(now + this.options.minIntervalMs);
      }
      this.arm();
    });
  }

  /** Runs a full poll at once and restarts its backoff (e.g. after missing notifications). */
  wake(): void {
    if (this.closed) return;
    this.resetFull(Date.now());
    this.arm();
  }

  /**
   * Whether notifications are being received. Turned on once LISTEN is active, which also polls
   * everything at once, since notifications sent before were missed.
   */
  setListening(listening: boolean): void {
    this.listening = listening;
    if (listening) this.wake();
  }

  /** A NOTIFY for a task: looked up at once (with the others notified meanwhile) if awaited. */
  notified(taskId: string): void {
    if (this.closed || !this.waiters.has(taskId)) return;
    this.checkIds.add(taskId);
    this.checkDueAt = Math.min(this.checkDueAt, Date.now());
    this.arm();
  }

  /** Ends every pending wait with undefined and stops polling. */
  close(): void {
    this.closed = true;
    this.timer?.();
    this.timer = undefined;
    this.checkIds.clear();
    const all = [...this.waiters.values()].flatMap((set) => [...set]);
    this.waiters.clear();
    for (const wake of all) wake(undefined);
  }

  private resetFull(at: number): void {
    this.fullInterval = this.options.minIntervalMs;
    this.fullDueAt = Math.min(this.fullDueAt, at);
    this.fullResets += 1;
  }

  /** Nothing pending: the next waiter schedules what it needs. */
  private idle(): void {
    this.fullDueAt = Number.POSITIVE_INFINITY;
    this.checkDueAt = Number.POSITIVE_INFINITY;
    this.checkIds.clear();
  }

  /** Sets the timer for the earliest due query, unless one runs (it re-arms when done). */
  private arm(): void {
    if (this.closed || this.polling) return;
    if (this.waiters.size === 0) {
      this.timer?.();
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.idle();
      return;
    }
    const next = Math.min(
      this.fullDueAt,
      this.checkIds.size > 0 ? this.checkDueAt : Number.POSITIVE_INFINITY,
    );
    if (next === Number.POSITIVE_INFINITY) return;
    // Never postpone a tick that is already due sooner.
    if (this.timer && this.timerAt <= next) return;
    this.timer?.();
    this.timerAt = next;
    const delay = next - Date.now();
    if (delay <= 0) {
      // Due now (a notification): after the current I/O, so that the notifications read with
      // it join the same query, without the millisecond a zero timeout takes.
      const immediate = setImmediate(() => void this.tick());
      this.timer = () => clearImmediate(immediate);
    } else {
      const timeout = setTimeout(() => void this.tick(), delay);
      this.timer = () => clearTimeout(timeout);
    }
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    if (this.waiters.size === 0) {
      this.idle();
      return;
    }
    const now = Date.now();
    const full = this.fullDueAt <= now + DUE_SLACK_MS;
    let ids: string[];
    if (full) {
      ids = [...this.waiters.keys()];
      this.fullDueAt = Number.POSITIVE_INFINITY;
    } else if (this.checkIds.size > 0 && this.checkDueAt <= now + DUE_SLACK_MS) {
      ids = [...this.checkIds].filter((id) => this.waiters.has(id));
    } else {
      this.arm();
      return;
    }
    // A full poll covers every id a check was due for.
    this.checkIds.clear();
    this.checkDueAt = Number.POSITIVE_INFINITY;
    const resets = this.fullResets;
    this.polling = true;
    let resolvedAny = false;
    try {
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
    if (full) {
      if (this.fullResets !== resets) {
        // Asked to poll everything soon while this poll ran: already at the short interval.
      } else if (resolvedAny && !this.listening) {
        this.fullInterval = this.options.minIntervalMs;
      } else {
        this.fullInterval = Math.min(this.fullInterval * 2, this.options.maxIntervalMs);
      }
      this.fullDueAt = Math.min(this.fullDueAt, Date.now() + this.fullInterval);
    }
    this.arm();
  }
}
