import { UnrecoverableError } from '../errors';
import type { RetryOptions } from '../task/task-options';

/** Retries of `taskContext().retry()` when the task declares no `retry` option (Celery's default). */
export const DEFAULT_EXPLICIT_MAX_RETRIES = 3;
export const DEFAULT_RETRY_DELAY_MS = 1_000;
export const DEFAULT_RETRY_MAX_DELAY_MS = 3_600_000;

/**
 * Thrown by `taskContext().retry()` to end the run and ask for a retry. It passes through task
 * code: do not catch it.
 */
export class RetryRequest extends Error {
  override name = 'RetryRequest';

  constructor(
    /** Delay before the retry, or undefined for the task's backoff. */
    readonly countdownMs: number | undefined,
    /** The error that caused the retry, stored with the RETRY state. */
    readonly error: unknown,
  ) {
    super(`retry requested${error instanceof Error ? `: ${error.message}` : ''}`);
  }
}

/** What to do with a failed run. */
export type RetryDecision =
  | { retry: true; delayMs: number; error: unknown }
  | { retry: false; exhausted: boolean; error: unknown };

/** Decides whether and when a failed task is retried. */
export class RetryPolicy {
  constructor(private readonly options: RetryOptions | undefined) {}

  /**
   * The decision for a run that threw `thrown`, after `retries` earlier retries.
   * `exhausted` says the task was retryable but has no retries left.
   */
  decide(thrown: unknown, retries: number): RetryDecision {
    if (thrown instanceof RetryRequest) {
      const max = this.options?.max ?? DEFAULT_EXPLICIT_MAX_RETRIES;
      if (retries >= max) return { retry: false, exhausted: true, error: thrown.error ?? thrown };
      // A countdown computed from bad input (NaN, Infinity, negative) falls back to the backoff.
      const countdown = thrown.countdownMs;
      const delayMs =
        countdown !== undefined && Number.isFinite(countdown)
          ? Math.max(0, countdown)
          : this.delay(retries);
      return { retry: true, delayMs, error: thrown.error };
    }
    if (!this.options || !this.retryable(thrown))
      return { retry: false, exhausted: false, error: thrown };
    if (retries >= this.options.max) return { retry: false, exhausted: true, error: thrown };
    return { retry: true, delayMs: this.delay(retries), error: thrown };
  }

  /** Delay before retry number `retries + 1`. */
  delay(retries: number): number {
    const base = this.options?.delayMs ?? DEFAULT_RETRY_DELAY_MS;
    const ceiling = this.options?.maxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS;
    const delay =
      (this.options?.backoff ?? 'exponential') === 'fixed'
        ? base
        : Math.min(base * 2 ** retries, ceiling);
    return this.options?.jitter ? Math.round(delay * (0.5 + Math.random() / 2)) : delay;
  }

  private retryable(error: unknown): boolean {
    if (
      error instanceof UnrecoverableError ||
      (error as { unrecoverable?: boolean })?.unrecoverable
    )
      return false;
    const on = this.options?.on;
    // Errors from task threads arrive rebuilt, so they are matched by class name as well.
    return (
      !on ||
      on.some((cls) => error instanceof cls || (error instanceof Error && error.name === cls.name))
    );
  }
}
