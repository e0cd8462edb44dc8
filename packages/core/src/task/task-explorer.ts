import 'reflect-metadata';
import { ConfigError } from '../errors';
import { readParameterNames } from './parameter-names';
import type { TaskDefinition } from './task-definition';
import {
  TASK_METADATA,
  TASK_METHODS_METADATA,
  TASK_SERVICE_METADATA,
  type TaskMetadata,
  type TaskServiceMetadata,
} from './task-metadata';
import type { ClassType } from './task-options';

/**
 * Turns the metadata that `@TaskService` and `@Task` recorded into plain task definitions, and
 * refuses declaration mistakes with a `ConfigError` naming the class and method. The only code
 * that reads Conveyor's decorator metadata.
 */
export class TaskExplorer {
  constructor(private readonly defaultQueue: string) {}

  explore(classes: readonly ClassType[]): TaskDefinition[] {
    const seenClasses = new Set<ClassType>();
    const byName = new Map<string, TaskDefinition>();
    for (const cls of classes) {
      if (typeof cls !== 'function') {
        throw new ConfigError(`tasks: expected a class, got ${typeof cls}`);
      }
      if (seenClasses.has(cls)) throw new ConfigError(`tasks: ${cls.name} is listed twice`);
      seenClasses.add(cls);
      for (const definition of this.exploreClass(cls)) {
        const clash = byName.get(definition.name);
        if (clash) {
          throw new ConfigError(
            `duplicate task name '${definition.name}': declared by ${clash.label} and by ${definition.label}`,
          );
        }
        byName.set(definition.name, definition);
      }
    }
    return [...byName.values()];
  }

  /** The task definition of a task class, or the definitions of a service's methods. */
  exploreClass(cls: ClassType): TaskDefinition[] {
    const service = Reflect.getMetadata(TASK_SERVICE_METADATA, cls) as
      TaskServiceMetadata | undefined;
    const classTask = Reflect.getOwnMetadata(TASK_METADATA, cls) as TaskMetadata | undefined;
    const methods = (Reflect.getMetadata(TASK_METHODS_METADATA, cls.prototype) ?? []) as Array<
      string | symbol
    >;

    if (service && classTask) {
      throw new ConfigError(`${cls.name} has both @TaskService and @Task: use one of them`);
    }
    if (classTask) {
      // run() itself may carry @Task: TypeScript records parameter types only on decorated members.
      const stray = methods.find((m) => m !== 'run');
      if (stray !== undefined) {
        throw new ConfigError(
          `${cls.name}.${String(stray)} has @Task, but ${cls.name} is a @Task class: only run() is its task`,
        );
      }
      const runOptions =
        methods.length > 0
          ? (Reflect.getMetadata(TASK_METADATA, cls.prototype, 'run') as TaskMetadata)
          : {};
      return [this.classTask(cls, { ...runOptions, ...classTask })];
    }
    if (service) {
      if (typeof service.name !== 'string' || service.name.trim() === '') {
        throw new ConfigError(`@TaskService on ${cls.name} needs a non-empty name`);
      }
      if (methods.length === 0) {
        throw new ConfigError(`@TaskService ${cls.name} has no @Task methods`);
      }
      return methods.map((method) => this.serviceTask(cls, service, method));
    }
    if (methods.length > 0) {
      throw new ConfigError(
        `${cls.name}.${String(methods[0])} has @Task, but ${cls.name} has no @TaskService decorator`,
      );
    }
    throw new ConfigError(`${cls.name} is neither a @TaskService nor a @Task class`);
  }

  private classTask(cls: ClassType, options: TaskMetadata): TaskDefinition {
    const label = `${cls.name}.run`;
    if (typeof cls.prototype.run !== 'function') {
      throw new ConfigError(`@Task class ${cls.name} has no run() method`);
    }
    if (!options.name || options.name.trim() === '') {
      throw new ConfigError(
        `@Task class ${cls.name} needs a name, e.g. @Task({ name: 'math.add' })`,
      );
    }
    return this.definition(cls, 'run', 'class', options.name, options.queue, options, label);
  }

  private serviceTask(
    cls: ClassType,
    service: TaskServiceMetadata,
    key: string | symbol,
  ): TaskDefinition {
    const label = `${cls.name}.${String(key)}`;
    if (typeof key === 'symbol')
      throw new ConfigError(`${label}: a task method needs a string name`);
    const descriptor = findDescriptor(cls.prototype, key);
    if (!descriptor || typeof descriptor.value !== 'function') {
      throw new ConfigError(`${label} has @Task but is not a method`);
    }
    const options = Reflect.getMetadata(TASK_METADATA, cls.prototype, key) as TaskMetadata;
    if (options.name !== undefined && options.name.trim() === '') {
      throw new ConfigError(`${label}: @Task name must not be empty`);
    }
    const name = options.name ?? `${service.name}.${key}`;
    return this.definition(
      cls,
      key,
      'service',
      name,
      options.queue ?? service.queue,
      options,
      label,
    );
  }

  private definition(
    cls: ClassType,
    method: string,
    kind: 'service' | 'class',
    name: string,
    queue: string | undefined,
    options: TaskMetadata,
    label: string,
  ): TaskDefinition {
    validateOptions(options, label);
    if (queue !== undefined && queue.trim() === '')
      throw new ConfigError(`${label}: queue must not be empty`);
    const fn = cls.prototype[method] as (...args: never[]) => unknown;
    const paramTypes = (Reflect.getMetadata('design:paramtypes', cls.prototype, method) ??
      []) as unknown[];
    const parsed = readParameterNames(fn);
    const paramNames = options.params ?? parsed.names;
    if (options.params && options.params.length < fn.length) {
      throw new ConfigError(
        `${label}: params names ${options.params.length} parameters, the method declares ${fn.length}`,
      );
    }
    return {
      name,
      queue: queue ?? this.defaultQueue,
      target: cls,
      method,
      kind,
      options: { ...options },
      paramTypes,
      paramNames,
      restIndex: parsed.restIndex,
      label,
    };
  }
}

function validateOptions(options: TaskMetadata, label: string): void {
  const nonNegative = (value: number | undefined, field: string): void => {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      throw new ConfigError(`${label}: ${field} must be a non-negative number, got ${value}`);
    }
  };
  nonNegative(options.timeLimitMs, 'timeLimitMs');
  nonNegative(options.softTimeLimitMs, 'softTimeLimitMs');
  if (
    options.priority !== undefined &&
    !(Number.isInteger(options.priority) && options.priority >= 0 && options.priority <= 255)
  ) {
    throw new ConfigError(
      `${label}: priority must be an integer from 0 to 255, got ${options.priority}`,
    );
  }
  if (
    options.maxDeliveries !== undefined &&
    !(Number.isInteger(options.maxDeliveries) && options.maxDeliveries >= 1)
  ) {
    throw new ConfigError(
      `${label}: maxDeliveries must be an integer from 1, got ${options.maxDeliveries}`,
    );
  }
  if (options.acks !== undefined && options.acks !== 'late' && options.acks !== 'early') {
    throw new ConfigError(
      `${label}: acks must be 'late' or 'early', got '${String(options.acks)}'`,
    );
  }
  if (options.returns !== undefined && typeof options.returns !== 'function') {
    throw new ConfigError(
      `${label}: returns must be a function returning a class, e.g. () => Receipt`,
    );
  }
}

function findDescriptor(proto: object | null, key: string): PropertyDescriptor | undefined {
  for (let p = proto; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const descriptor = Object.getOwnPropertyDescriptor(p, key);
    if (descriptor) return descriptor;
  }
  return undefined;
}
