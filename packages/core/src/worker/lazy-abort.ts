/**
 * A task's abort lever, with its `AbortController` made on first use. Most tasks never read
 * their signal and are never aborted, and a controller with its signal is among the larger
 * allocations of a worker's per-task work.
 */
export class LazyAbort {
  private controller?: AbortController;

  /** The task's signal; aborted if `abort()` was called before anyone asked for it. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  /** Aborts once; later calls keep the first reason. */
  abort(reason: unknown): void {
    const signal = this.signal;
    if (!signal.aborted) this.controller!.abort(reason);
  }
}
