import {
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_DELIVERIES,
  DEFAULT_PREFETCH_MULTIPLIER,
} from '../defaults';
import { OptionChecker, type NumberOption, type NumberRule } from '../plugin/option-checks';
import type { WorkerOptions } from './worker-options';

/**
 * The numbers that bound how much a worker takes on, each with its rule and its default. The
 * worker checks its options against them and `conveyor worker` its flags, so both refuse the
 * same values in the same words.
 */
export const WORKER_LIMITS = {
  /** Tasks run at once. */
  concurrency: { default: DEFAULT_CONCURRENCY, integer: true, min: 1 },
  /** Each consumer's prefetch is concurrency × this. */
  prefetchMultiplier: { default: DEFAULT_PREFETCH_MULTIPLIER, integer: true, min: 1 },
  /** Deliveries that may end without completing before a message is dead-lettered. */
  maxDeliveries: { default: DEFAULT_MAX_DELIVERIES, integer: true, min: 1 },
} as const satisfies Record<string, NumberOption>;

/** The values of {@link WORKER_LIMITS} a worker runs with. */
export type WorkerLimits = { [name in keyof typeof WORKER_LIMITS]: number };

/**
 * What a consumer's prefetch (`ConsumeOptions.prefetch`, `setPrefetch`) may be: a whole number
 * from 1. A worker's prefetch, concurrency × prefetchMultiplier, always is. A transport whose
 * broker caps it adds its own `max` to this rule (AMQP's prefetch-count is 16 bits: 65535) and
 * checks with {@link OptionChecker}, so every transport words the refusal alike.
 */
export const PREFETCH_RULE: NumberRule = { integer: true, min: 1 };

/**
 * The worker's limits from its options, defaults filled in; a `ConfigError` naming the option
 * and its value if one breaks its rule.
 */
export function checkWorkerLimits(options: WorkerOptions): WorkerLimits {
  return new OptionChecker('Worker').numbers(options, WORKER_LIMITS);
}
