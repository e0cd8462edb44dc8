import type { TaskOptions, TaskServiceOptions } from './task-options';

/** Reflect-metadata keys that Conveyor's decorators write. Only the explorer reads them. */
export const TASK_SERVICE_METADATA = 'conveyor:task-service';
export const TASK_METADATA = 'conveyor:task';
export const TASK_METHODS_METADATA = 'conveyor:task-methods';

/** What `@TaskService` records on a class. */
export type TaskServiceMetadata = TaskServiceOptions;

/** What `@Task` records on a method or class. */
export type TaskMetadata = TaskOptions;
