import type { ClassType, TaskOptions } from './task-options';

/** A task as the app knows it, built by the explorer from decorator metadata. */
export interface TaskDefinition {
  /** Name on the wire. */
  readonly name: string;
  /** Queue its messages go to. */
  readonly queue: string;
  /** The class that declares it. */
  readonly target: ClassType;
  /** The method that runs it (`run` for task classes). */
  readonly method: string;
  /** `service`: a `@Task` method of a `@TaskService`; `class`: a `@Task` class with `run()`. */
  readonly kind: 'service' | 'class';
  /** The options given to `@Task`. */
  readonly options: Readonly<TaskOptions>;
  /** Declared parameter types (design:paramtypes), used to rebuild arguments. */
  readonly paramTypes: readonly unknown[];
  /** Parameter names, for mapping keyword arguments; undefined where a parameter has none. */
  readonly paramNames: readonly (string | undefined)[];
  /** Index of a rest parameter (`...items`), if the method has one. */
  readonly restIndex?: number;
  /** `Class.method`, for messages. */
  readonly label: string;
}
