/**
 * @conveyor/core: tasks, typed clients, the worker, Celery protocol v2, and the in-memory
 * transport and result backend that make up the default.
 */
export { Conveyor } from './app/conveyor';
export type { CloseReport, UnclosedPart } from './app/close-report';
export type { ConveyorOptions } from './app/conveyor-options';
export type { SendOptions } from './producer/send-options';
export { Task, TaskService } from './task/decorators';
export type {
  TaskOptions,
  TaskServiceOptions,
  AckMode,
  ClassType,
  RetryOptions,
  ErrorClass,
  TaskIsolation,
} from './task/task-options';
export type { TaskDefinition } from './task/task-definition';
export { taskContext, type TaskContext } from './task/task-context';
export type { TaskProxy, ServiceClient, ClientOf } from './client/task-client';
export { Signature } from './canvas/signature';
export { AsyncResult, type GetOptions, type RevokeOptions } from './result/async-result';
export { Worker } from './worker/worker';
export type { WorkerOptions } from './worker/worker-options';
export type { WorkerHost } from './worker/worker-host';
export type {
  WorkerEvents,
  TaskEvent,
  RejectedMessageEvent,
  DeadLetterEvent,
} from './worker/worker-events';
export { logWorker } from './logging/worker-log';
export {
  createWorkerLogger,
  type WorkerLogger,
  type WorkerLoggerOptions,
  type LogFormat,
} from './logging/worker-logger';
export { parseLogLevel, type LogLevel } from './logging/log-level';
export * from './errors';
export * as defaults from './defaults';
export * from './protocol/task-message';
export * from './protocol/result-meta';
export * from './protocol/message-codec';
export * from './protocol/celery-time';
export { parseCeleryJson, stringifyCeleryJson } from './protocol/celery-json';
export * from './protocol/control-message';
export { reprArgs, reprKwargs } from './protocol/python-repr';
export * from './transport/transport';
export * from './backend/result-backend';
export {
  capabilitiesOf,
  hasCapability,
  requireCapability,
  type BackendWith,
  type TransportWith,
} from './capability/capability';
export {
  DeadLetters,
  type DeadLettersOptions,
  type DeadLetterPageOptions,
  type DeadLetterPage,
  type DeadLetterSelection,
  type ReplayOptions,
  type ReplayReport,
  type PurgeReport,
} from './dead-letters/dead-letters';
export type { DeadLetter } from './dead-letters/dead-letter';
export * from './memory/memory-broker';
export * from './memory/memory-transport';
export * from './memory/memory-result-backend';
export { coalesceWrites } from './io/write-coalescing';
export { afterDelay, MAX_TIMER_MS } from './timing/long-timeout';
