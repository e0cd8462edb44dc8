import type { SendOptions } from '../producer/send-options';
import type { Signature } from '../canvas/signature';
import type { AsyncResult } from '../result/async-result';

/**
 * A typed handle on one task: its argument and result types come from the method.
 * `A` is the parameter tuple, `R` the resolved return type.
 */
export interface TaskProxy<A extends unknown[], R> {
  /** The task's name on the wire. */
  readonly taskName: string;
  /** Sends the task with these arguments; resolves once the broker confirmed the message. */
  delay(...args: A): Promise<AsyncResult<R>>;
  /** Sends the task with these arguments and per-call options. */
  applyAsync(args: A, options?: SendOptions): Promise<AsyncResult<R>>;
  /** A signature of this call, for canvas workflows. */
  s(...args: A): Signature<R>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/** Keys of `T` whose values are methods. */
export type MethodKeys<T> = {
  [K in keyof T]: T[K] extends AnyFunction ? K : never;
}[keyof T];

/** The typed client of a task service: one {@link TaskProxy} per method. */
export type ServiceClient<T> = {
  readonly [K in MethodKeys<T>]: T[K] extends (...args: infer A) => infer R
    ? TaskProxy<A, Awaited<R>>
    : never;
};

/**
 * What `app.client(C)` returns: a {@link TaskProxy} for a `@Task` class (typed by its `run`), or a
 * {@link ServiceClient} for a `@TaskService` class.
 */
export type ClientOf<C> =
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  C extends abstract new (...args: any[]) => infer I
    ? I extends { run: (...args: infer A) => infer R }
      ? TaskProxy<A, Awaited<R>>
      : ServiceClient<I>
    : never;
