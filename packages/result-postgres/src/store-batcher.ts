/** One `store()` call waiting for its row to be committed. */
export interface StoreRequest {
  readonly taskId: string;
  readonly status: string;
  /** The meta document, as JSON text. */
  readonly document: string;
  resolve(): void;
  reject(error: unknown): void;
}

/** Settings of a {@link StoreBatcher}. */
export interface StoreBatcherOptions {
  /** Most rows per statement. */
  maxBatchSize: number;
  /** Most statements running at once; requests arriving meanwhile wait and form the next batch. */
  maxInFlight: number;
  /**
   * Writes the rows of a batch in one statement (task ids distinct within it, and from every
   * other batch in flight, sorted by task id). Rejects with the statement's failure.
   */
  writeMany(batch: readonly StoreRequest[]): Promise<unknown>;
  /** Writes one row on its own. */
  writeOne(request: StoreRequest): Promise<unknown>;
  /**
   * Whether a failure of {@link writeMany} came from some row's data (a value the column
   * refuses, a deadlock) rather than from the connection: the rows are then written one by
   * one, so that only the bad one fails.
   */
  isRowError(error: unknown): boolean;
}

/**
 * Groups `store()` calls into multi-row statements: a group commit. Calls made in the same tick
 * go together; while `maxInFlight` statements run, new calls queue and leave together as soon as
 * one finishes, up to `maxBatchSize` rows each. An idle backend therefore sends each store at
 * once (no added latency), and a busy one sends one statement, one commit and one WAL flush per
 * batch instead of per row.
 *
 * Calls for the same task id keep their order: a batch ends before a second row for an id it
 * already holds or that a running batch writes, so one statement never writes a row twice and
 * two writes of an id are never in flight together.
 */
export class StoreBatcher {
  private queue: StoreRequest[] = [];
  private readonly inFlightIds = new Set<string>();
  private inFlight = 0;
  private scheduled = false;
  private drained: Array<() => void> = [];

  constructor(private readonly options: StoreBatcherOptions) {}

  /** Writes one row; resolves once committed (it leaves with the others of this tick). */
  store(taskId: string, status: string, document: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.add({ taskId, status, document, resolve, reject }),
    );
  }

  /** Queues one write; it leaves with the others of this tick. */
  add(request: StoreRequest): void {
    this.queue.push(request);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Requests not yet sent: each is rejected with `error`, e.g. after a batch met an outage. */
  private rejectQueued(error: unknown): void {
    const queued = this.queue;
    this.queue = [];
    for (const request of queued) request.reject(error);
    this.notifyIfDrained();
  }

  /** Sends everything queued now and resolves once nothing is queued or running. */
  drain(): Promise<void> {
    this.pump();
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      if (batch.length === 0) break; // the oldest request's id is being written: wait for it
      this.inFlight += 1;
      for (const request of batch) this.inFlightIds.add(request.taskId);
      void this.execute(batch)
        .catch((error: unknown) => {
          for (const request of batch) request.reject(error);
        })
        .finally(() => {
          this.inFlight -= 1;
          for (const request of batch) this.inFlightIds.delete(request.taskId);
          this.pump();
          this.notifyIfDrained();
        });
    }
  }

  /** Writes a batch in one statement; on a failure due to its data, row by row. */
  private async execute(batch: StoreRequest[]): Promise<void> {
    if (batch.length === 1) return this.writeAlone(batch[0]!);
    // One order for every batch: concurrent batches from several processes that share ids (a
    // redelivered task) lock their rows in the same order instead of deadlocking.
    batch.sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0));
    try {
      await this.options.writeMany(batch);
    } catch (error) {
      if (this.options.isRowError(error)) {
        await Promise.all(batch.map((request) => this.writeAlone(request)));
        return;
      }
      // The database is unreachable or not answering: the rows queued behind this batch
      // would only wait for the same failure, so they fail now too (the caller retries).
      for (const request of batch) request.reject(error);
      this.rejectQueued(error);
      return;
    }
    for (const request of batch) request.resolve();
  }

  private async writeAlone(request: StoreRequest): Promise<void> {
    try {
      await this.options.writeOne(request);
      request.resolve();
    } catch (error) {
      request.reject(error);
    }
  }

  /** The oldest queued requests, up to the batch size, stopping before a repeated task id. */
  private take(): StoreRequest[] {
    const batch: StoreRequest[] = [];
    const ids = new Set<string>();
    let taken = 0;
    while (taken < this.queue.length && batch.length < this.options.maxBatchSize) {
      const request = this.queue[taken]!;
      if (ids.has(request.taskId) || this.inFlightIds.has(request.taskId)) break;
      ids.add(request.taskId);
      batch.push(request);
      taken += 1;
    }
    if (taken > 0) this.queue.splice(0, taken);
    return batch;
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && this.queue.length === 0;
  }

  private notifyIfDrained(): void {
    if (!this.isIdle() || this.drained.length === 0) return;
    const waiting = this.drained;
    this.drained = [];
    for (const resolve of waiting) resolve();
  }
}
