/**
 * `@conveyor/core/plugin`: the kit for authors of transports and result backends. What every
 * plugin needs lives here once: the interfaces to implement, the errors to throw, the Celery
 * protocol codecs, option checks, credential redaction, bounded waits, the background-error
 * hook, write coalescing and timers for any delay. App authors import `@conveyor/core` instead.
 * The conformance suites to run against a plugin are in `@conveyor/core/testing`.
 */

// The contracts.
export type * from '../transport/transport';
export {
  DEAD_LETTER_REASON_HEADER,
  DEAD_LETTERED_AT_HEADER,
  DELIVERY_COUNT_HEADER,
  BROKER_DELIVERY_COUNT_HEADER,
  BROKER_DEAD_LETTERING_HEADERS,
  deadLetterQueueName,
  TRANSPORT_CAPABILITIES,
} from '../transport/transport';
export type * from '../backend/result-backend';
export { BACKEND_CAPABILITIES } from '../backend/result-backend';
export {
  capabilitiesOf,
  hasCapability,
  requireCapability,
  type BackendWith,
  type TransportWith,
} from '../capability/capability';
export {
  ConveyorError,
  ConfigError,
  ConnectionError,
  SerializationError,
  UnroutableError,
  MessageDecodeError,
} from '../errors';

// Celery's wire formats.
export * from '../protocol/task-message';
export * from '../protocol/result-meta';
export {
  encodeTaskMessage,
  decodeTaskMessage,
  DEFAULT_MAX_BODY_BYTES,
} from '../protocol/message-codec';
export type { DecodeLimits } from '../protocol/message-codec';
export { celeryDateDone, celeryTimestamp, parseCeleryTimestamp } from '../protocol/celery-time';
export { parseCeleryJson, stringifyCeleryJson } from '../protocol/celery-json';
export * from '../protocol/control-message';
export { reprArgs, reprKwargs } from '../protocol/python-repr';

// Helpers every plugin needs.
export {
  OptionChecker,
  type NumberOption,
  type NumberRule,
  type StringRule,
} from './option-checks';
export { PREFETCH_RULE } from '../worker/consumption-rules';
export { renamedOption, warnDeprecatedOption } from './renamed-options';
export { REDACTED, Redactor, redactUrl } from './url-redaction';
export { bounded, closeWithin } from './bounded-wait';
export {
  BackgroundErrors,
  BACKGROUND_WARNING_INTERVAL_MS,
  type BackgroundErrorHandler,
} from './background-errors';
export { coalesceWrites } from '../io/write-coalescing';
export { afterDelay, MAX_TIMER_MS } from '../timing/long-timeout';
