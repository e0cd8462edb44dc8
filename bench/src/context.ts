import type { Conveyor } from '@conveyor/core';
import { Echo } from './bench-tasks';
import type { BenchAppSettings } from './conveyor-app';
import type { BackendKind, RawConsumerChildConfig, WorkerChildConfig } from './ipc';
import type { RunNames } from './names';

/** Sizes of one run; `--quick` divides them. */
export interface BenchSizes {
  /** Tasks of each throughput measurement (also the ceiling's burst). */
  throughput: number;
  /** Sequential round trips of each latency measurement. */
  latency: number;
  /** Tasks of the backlog. */
  backlog: number;
  /** Tasks of the memory-backend scenario. */
  memory: number;
  /** Round trips of the no-delay-off (Nagle) measurement. */
  nagle: number;
  /** Round trips done before each throughput measurement, unmeasured. */
  warmup: number;
}

/** What every scenario gets. */
export interface BenchContext {
  names: RunNames;
  urls: { amqp: string; redis: string; database: string };
  sizes: BenchSizes;
  concurrency: number;
  prefetchMultiplier: number;
  /** concurrency × prefetchMultiplier: the prefetch of the Conveyor workers and of the raw consumer. */
  prefetch: number;
  /** Progress lines, on stderr so that stdout holds the table. */
  log(message: string): void;
}

/** Settings of a Conveyor app (producer or worker) of this run on `queue`. */
export function appSettings(
  ctx: BenchContext,
  queue: string,
  backend: BenchAppSettings['backend'],
): BenchAppSettings {
  return {
    queue,
    backend,
    amqpUrl: ctx.urls.amqp,
    redisUrl: ctx.urls.redis,
    databaseUrl: ctx.urls.database,
    redisPrefix: ctx.names.redisPrefix,
    pgSchema: ctx.names.pgSchema,
    delayNamespace: ctx.names.delayNamespace,
  };
}

/** Config of a forked Conveyor worker of this run on `queue`. */
export function workerConfig(
  ctx: BenchContext,
  queue: string,
  backend: BackendKind,
): WorkerChildConfig {
  return {
    kind: 'conveyor-worker',
    ...appSettings(ctx, queue, backend),
    backend,
    concurrency: ctx.concurrency,
    prefetchMultiplier: ctx.prefetchMultiplier,
  };
}

/**
 * Config of a forked raw amqplib consumer of this run on `queue`: the Conveyor workers' prefetch,
 * TCP no-delay unless told otherwise, and what it does with each message (`reply`, `results`).
 */
export function rawConsumerConfig(
  ctx: BenchContext,
  queue: string,
  behaviour: Pick<RawConsumerChildConfig, 'reply' | 'results'> & { noDelay?: boolean },
): RawConsumerChildConfig {
  return {
    kind: 'raw-consumer',
    queue,
    amqpUrl: ctx.urls.amqp,
    prefetch: ctx.prefetch,
    noDelay: behaviour.noDelay ?? true,
    reply: behaviour.reply,
    results: behaviour.results,
  };
}

/**
 * Sends `n` tasks (`bench.echo(offset + i)`) at once, then waits for every `get()`; checks each
 * value. Returns the milliseconds from the first `delay()` to the last `get()`; `phases.sendMs`
 * receives the milliseconds until every `delay()` had resolved (all confirmed by the broker).
 */
export async function sendAllThenGet(
  app: Conveyor,
  n: number,
  offset: number,
  phases?: { sendMs?: number },
): Promise<number> {
  const client = app.client(Echo);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => client.delay(offset + i)));
  if (phases) phases.sendMs = performance.now() - started;
  const values = await Promise.all(results.map((r) => r.get({ timeoutMs: 300_000 })));
  const elapsed = performance.now() - started;
  const wrong = values.filter((value, i) => value !== offset + i).length;
  if (wrong > 0) throw new Error(`${wrong} of ${n} results were wrong`);
  return elapsed;
}

/** Sends `n` tasks with at most `window` delay() calls in flight; returns the milliseconds taken. */
export async function sendWindowed(app: Conveyor, n: number, window: number): Promise<number> {
  const client = app.client(Echo);
  const started = performance.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const i = next;
      next += 1;
      await client.delay(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
  return performance.now() - started;
}
