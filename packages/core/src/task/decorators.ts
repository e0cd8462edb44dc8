import 'reflect-metadata';
import { TASK_METADATA, TASK_METHODS_METADATA, TASK_SERVICE_METADATA } from './task-metadata';
import type { TaskOptions, TaskServiceOptions } from './task-options';

/**
 * Marks a class whose `@Task` methods are tasks named `<name>.<method>`. Records metadata only;
 * the app reads it when it is built.
 */
export function TaskService(options: TaskServiceOptions): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(TASK_SERVICE_METADATA, { ...options }, target);
  };
}

/**
 * Marks a task: a method of a `@TaskService` class, or a class whose `run()` is the task
 * (then `name` is required). Records metadata only.
 *
 * TypeScript records parameter types only on decorated members, so a task class whose `run()`
 * takes class instances or Dates should also put `@Task()` on `run()` to have them rebuilt.
 */
export function Task(options: TaskOptions = {}): ClassDecorator & MethodDecorator {
  return (target: object, propertyKey?: string | symbol) => {
    if (propertyKey === undefined) {
      Reflect.defineMetadata(TASK_METADATA, { ...options }, target);
      return;
    }
    const methods: Array<string | symbol> =
      Reflect.getOwnMetadata(TASK_METHODS_METADATA, target) ?? [];
    Reflect.defineMetadata(TASK_METHODS_METADATA, [...methods, propertyKey], target);
    Reflect.defineMetadata(TASK_METADATA, { ...options }, target, propertyKey);
  };
}
