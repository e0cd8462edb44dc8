/**
 * @conveyor/core: tasks, typed clients, the worker, Celery protocol v2, and the in-memory
 * transport and result backend that make up the default.
 *
 * This entry point serves app authors, and its list is deliberate. What transport and result
 * backend authors need (protocol codecs, option checks, redaction, bounded waits) is in
 * `@conveyor/core/plugin`; the conformance suites are in `@conveyor/core/testing`.
 */
import * as kit from './plugin';
import { MemoryQueue as MemoryQueueClass } from './memory/memory-broker';

// The app.
export { Conveyor } from './app/conveyor';
export type { CloseReport, UnclosedPart } from './app/close-report';
export type { ConveyorOptions } from './app/conveyor-options';
export type { SendOptions } from './producer/send-options';

// Tasks.
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

// Results.
export { AsyncResult, type GetOptions, type RevokeOptions } from './result/async-result';
export type { TaskState, ResultMeta, GroupMeta, ExceptionMeta } from './protocol/result-meta';

// The worker.
export { Worker } from './worker/worker';
export type { WorkerOptions } from './worker/worker-options';
export type { WorkerHost } from './worker/worker-host';
export type {
  WorkerEvents,
  TaskEvent,
  RejectedMessageEvent,
  DeadLetterEvent,
  DeadLetterKind,
  ResultStoredEvent,
  ReconnectEvent,
  WorkerStoppingEvent,
  WorkerStoppedEvent,
} from './worker/worker-events';
export { logWorker } from './logging/worker-log';
export {
  createWorkerLogger,
  type WorkerLogger,
  type WorkerLoggerOptions,
  type LogFormat,
} from './logging/worker-logger';
export { parseLogLevel, type LogLevel } from './logging/log-level';

// Dead letters: list, replay, purge.
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

// Errors and defaults.
export * from './errors';
export * as defaults from './defaults';

// What an app plugs in: the contracts, and the in-memory implementations.
export type {
  Transport,
  TransportMessage,
  MessageProperties,
  HeaderValue,
  QueueDeclaration,
  PublishOptions,
  Delivery,
  ConsumeOptions,
  Consumer,
  DeliveryHandler,
  ExchangeDeclaration,
  ExchangeQueueOptions,
  QueueStats,
  QueueRates,
  TransportCapability,
} from './transport/transport';
export { queueReport, type QueueReport, type TaskQueueReport } from './inspection/queue-report';
export {
  TRANSPORT_CAPABILITIES,
  DEAD_LETTERED_AT_HEADER,
  DELIVERY_COUNT_HEADER,
  BROKER_DELIVERY_COUNT_HEADER,
  BROKER_DEAD_LETTERING_HEADERS,
  type FetchedMessage,
} from './transport/transport';
export {
  BACKEND_CAPABILITIES,
  type ResultBackend,
  type BackendCapability,
} from './backend/result-backend';
export * from './capability/capability';
export type {
  TaskHeaders,
  TaskEmbed,
  TaskMessage,
  TaskProperties,
  SignatureDict,
} from './protocol/task-message';
export type { RevokeCommand } from './protocol/control-message';
export type { DecodeLimits } from './protocol/message-codec';
export { MemoryBroker, type StoredMessage, type MemoryConsumer } from './memory/memory-broker';
export { MemoryTransport, type MemoryTransportOptions } from './memory/memory-transport';
export {
  MemoryResultBackend,
  type MemoryResultBackendOptions,
} from './memory/memory-result-backend';

// Exported here by 0.1.0 and kept for one minor version; they leave this entry point in 0.3.0.

/** @deprecated Import it from `@conveyor/core/plugin`. */
export const CONTROL_EXCHANGE = kit.CONTROL_EXCHANGE;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const DEAD_LETTER_REASON_HEADER = kit.DEAD_LETTER_REASON_HEADER;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const DEFAULT_MAX_BODY_BYTES = kit.DEFAULT_MAX_BODY_BYTES;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const JSON_CONTENT_TYPE = kit.JSON_CONTENT_TYPE;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const MAX_TIMER_MS = kit.MAX_TIMER_MS;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const READY_STATES = kit.READY_STATES;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const UTF8 = kit.UTF8;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const afterDelay = kit.afterDelay;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const asExceptionMeta = kit.asExceptionMeta;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const celeryDateDone = kit.celeryDateDone;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const celeryTimestamp = kit.celeryTimestamp;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const coalesceWrites = kit.coalesceWrites;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const deadLetterQueueName = kit.deadLetterQueueName;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const decodeRevoke = kit.decodeRevoke;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const decodeTaskMessage = kit.decodeTaskMessage;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const emptyEmbed = kit.emptyEmbed;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const encodeRevoke = kit.encodeRevoke;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const encodeTaskMessage = kit.encodeTaskMessage;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const isAddressedTo = kit.isAddressedTo;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const isReadyState = kit.isReadyState;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const parseCeleryJson = kit.parseCeleryJson;
/** Celery's JSON writing (its NaN, Infinity and tagged types); also in `@conveyor/core/plugin`. */
export const stringifyCeleryJson = kit.stringifyCeleryJson;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const parseCeleryTimestamp = kit.parseCeleryTimestamp;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const reprArgs = kit.reprArgs;
/** @deprecated Import it from `@conveyor/core/plugin`. */
export const reprKwargs = kit.reprKwargs;
/** @deprecated Used only inside the memory broker; it leaves the public API in 0.3.0. */
export const MemoryQueue = MemoryQueueClass;
/** @deprecated Used only inside the memory broker; it leaves the public API in 0.3.0. */
export type MemoryQueue = MemoryQueueClass;
export * from './events/celery-event';
export { EventDispatcher } from './events/event-dispatcher';
export type { EventDispatcherOptions, EventDispatchCounts } from './events/event-dispatcher';
export {
  EventReceiver,
  DEFAULT_EVENT_QUEUE_TTL_MS,
  DEFAULT_EVENT_QUEUE_EXPIRES_MS,
} from './events/event-receiver';
export type { EventReceiverOptions, EventHandler } from './events/event-receiver';
export { ClusterState, HEARTBEAT_EXPIRE_WINDOW } from './events/cluster-state';
export type {
  ClusterStateOptions,
  TaskEventState,
  ClusterTask,
  ClusterWorker,
} from './events/cluster-state';
export { AppEvents, type EventMonitor } from './events/app-events';
export { Control } from './control/control-client';
export { DEFAULT_CONTROL_TIMEOUT_MS } from './defaults';
export type {
  ControlOptions,
  BroadcastOptions,
  NodeReplies,
  ControlAnswer,
} from './control/control-options';
export { Inspect } from './control/inspect';
export type { InspectOptions, TaskRequestInfo, ScheduledTaskInfo } from './control/inspect';
export { LamportClock } from './protocol/lamport-clock';
