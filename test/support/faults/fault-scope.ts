import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { Conveyor, type ResultBackend } from '@conveyor/core';
import { PostgresResultBackend } from '@conveyor/result-postgres';
import { RedisResultBackend } from '@conveyor/result-redis';
import { removeDelayNamespace, removeQueues } from '../rabbitmq';
import { dropSchema } from '../postgres';
import { deleteRedisKeys } from '../redis';
import { AMQP_URL, DATABASE_URL, REDIS_URL } from '../services';
import { TcpProxy } from '../tcp-proxy';
import { buildPackages } from './build';
import { parseRuns, type RunRecord } from './ledger';
import { killAllWorkers } from './worker-process';

/** Where a worker or producer connects; each defaults to the real service (no proxy). */
export interface Endpoints {
  amqpUrl?: string;
  redisUrl?: string;
  databaseUrl?: string;
}

export type BackendKind = 'redis' | 'postgres';

/** Worker process options, passed as environment variables to `fixtures/run-worker.js`. */
export interface WorkerSettings extends Endpoints {
  concurrency?: number;
  prefetchMultiplier?: number;
  maxBodyBytes?: number;
  shutdownTimeoutMs?: number;
  resultStoreTimeoutMs?: number;
  maxDeliveries?: number;
}

/**
 * Everything one fault case creates, uniquely named: its queue, delay namespace, Redis keys
 * (results and the run log) and PostgreSQL schema, the producer apps and proxies it opened;
 * `cleanup()` removes all of it.
 */
export class FaultScope {
  readonly id = randomUUID();
  readonly queue: string;
  readonly delayNamespace = `faults-delay-${this.id}`;
  readonly redisPrefix = `conveyor-test-${this.id}:`;
  readonly runlogKey = `${this.redisPrefix}runs`;
  readonly pgSchema = `faults_${this.id.replace(/-/g, '')}`;
  private readonly apps: Conveyor[] = [];
  private readonly proxies: TcpProxy[] = [];
  private runlog?: Redis;

  constructor(
    label: string,
    readonly backend: BackendKind = 'redis',
    readonly queueType: 'classic' | 'quorum' = 'classic',
  ) {
    this.queue = `faults-${label}-${this.id}`;
  }

  /** The environment of a worker process of this case. */
  workerEnv(settings: WorkerSettings = {}): Record<string, string> {
    const env: Record<string, string> = {
      CONVEYOR_AMQP_URL: settings.amqpUrl ?? AMQP_URL,
      CONVEYOR_DELAY_NS: this.delayNamespace,
      CONVEYOR_QUEUE: this.queue,
      CONVEYOR_BACKEND: this.backend,
      CONVEYOR_REDIS_URL: settings.redisUrl ?? REDIS_URL,
      CONVEYOR_KEY_PREFIX: this.redisPrefix,
      CONVEYOR_PG_URL: settings.databaseUrl ?? DATABASE_URL,
      CONVEYOR_PG_SCHEMA: this.pgSchema,
      CONVEYOR_RUNLOG_URL: REDIS_URL,
      CONVEYOR_RUNLOG_KEY: this.runlogKey,
      CONVEYOR_QUEUE_TYPE: this.queueType,
    };
    const numbers: Array<[string, number | undefined]> = [
      ['CONVEYOR_CONCURRENCY', settings.concurrency],
      ['CONVEYOR_PREFETCH_MULTIPLIER', settings.prefetchMultiplier],
      ['CONVEYOR_MAX_BODY_BYTES', settings.maxBodyBytes],
      ['CONVEYOR_SHUTDOWN_TIMEOUT_MS', settings.shutdownTimeoutMs],
      ['CONVEYOR_RESULT_STORE_TIMEOUT_MS', settings.resultStoreTimeoutMs],
      ['CONVEYOR_MAX_DELIVERIES', settings.maxDeliveries],
    ];
    for (const [name, value] of numbers) if (value !== undefined) env[name] = String(value);
    return env;
  }

  /** A result backend of this case (in the test process), through `endpoints` if given. */
  resultBackend(endpoints: Endpoints = {}, extra: { connectionName?: string } = {}): ResultBackend {
    if (this.backend === 'postgres') {
      return new PostgresResultBackend({
        url: endpoints.databaseUrl ?? DATABASE_URL,
        schema: this.pgSchema,
        connectTimeoutMs: 2_000,
        statementTimeoutMs: 3_000,
        onError: () => undefined,
      });
    }
    return new RedisResultBackend({
      url: endpoints.redisUrl ?? REDIS_URL,
      keyPrefix: `${this.redisPrefix}celery-task-meta-`,
      groupKeyPrefix: `${this.redisPrefix}celery-taskset-meta-`,
      commandTimeoutMs: 3_000,
      onError: () => undefined,
      ...extra,
    });
  }

  /** A producer app of this case in the test process; sends `faults.record` by name. */
  producer(endpoints: Endpoints = {}, backend?: ResultBackend): Conveyor {
    const app = new Conveyor({
      broker: new AmqpTransport({
        url: endpoints.amqpUrl ?? AMQP_URL,
        delayNamespace: this.delayNamespace,
        queueType: this.queueType,
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
        onError: () => undefined,
      }),
      backend: backend ?? this.resultBackend(endpoints),
      defaultQueue: this.queue,
    });
    this.apps.push(app);
    return app;
  }

  /** A started proxy to the service at `url`, for this case to cut; stopped by `cleanup()`. */
  async proxyTo(url: string): Promise<TcpProxy> {
    const proxy = await TcpProxy.to(url);
    this.proxies.push(proxy);
    return proxy;
  }

  /** Every run the tasks logged so far, in log order. */
  async runs(): Promise<RunRecord[]> {
    return parseRuns(await this.log().lrange(this.runlogKey, 0, -1));
  }

  /** How many runs were logged so far. */
  runCount(): Promise<number> {
    return this.log().llen(this.runlogKey);
  }

  /**
   * Closes the producers, removes the queue, delay namespace, keys and schema, and last stops the
   * proxies (which some producers connected through).
   */
  async cleanup(): Promise<void> {
    try {
      await Promise.all(this.apps.splice(0).map((a) => closeWithin(a, 5_000)));
      this.runlog?.disconnect();
      await removeQueues([this.queue]);
      await removeDelayNamespace(this.delayNamespace);
      await deleteRedisKeys(this.redisPrefix);
      if (this.backend === 'postgres') await dropSchema(this.pgSchema);
    } finally {
      // Even when a step above failed: a listening proxy would keep Jest from exiting.
      await Promise.all(this.proxies.splice(0).map((p) => p.stop()));
    }
  }

  private log(): Redis {
    this.runlog ??= new Redis(REDIS_URL);
    return this.runlog;
  }
}

/**
 * Registers what every fault case of a file shares: the packages built once before its cases,
 * and after each case its worker processes (and the crews that restart them) killed and its
 * {@link FaultScope} cleaned up, before any `afterEach` the file declares later. Returns the
 * function a case opens its scope with.
 */
export function useFaultScopes(): (
  ...args: ConstructorParameters<typeof FaultScope>
) => FaultScope {
  let scope: FaultScope | undefined;
  beforeAll(() => buildPackages(), 120_000);
  afterEach(async () => {
    await killAllWorkers();
    await scope?.cleanup();
    scope = undefined;
  });
  return (...args) => (scope = new FaultScope(...args));
}

/** Closes an app, giving up (with a warning) after `ms` so one hang cannot stop the cleanup. */
async function closeWithin(app: Conveyor, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const outcome = await Promise.race([app.close().catch(() => 'failed'), late]);
  clearTimeout(timer);
  if (outcome === 'late') console.warn(`a producer app did not close within ${ms} ms`);
}
