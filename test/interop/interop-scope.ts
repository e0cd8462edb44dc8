import { randomUUID } from 'node:crypto';
import { Conveyor, type ConveyorOptions } from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { RedisResultBackend } from '@conveyor/result-redis';
import { deleteRedisKeys } from '../support/redis';
import { delayNamespace, removeDelayNamespace, removeQueues } from '../support/rabbitmq';
import { AMQP_URL, REDIS_URL } from '../support/services';
import { PythonCeleryWorker } from './python-celery';

/** One interop test file's world; see {@link useCeleryInterop}. */
export interface InteropScope {
  /** Conveyor on the test RabbitMQ and Redis (Celery's key layout), its worker on `tsQueue`. */
  readonly app: Conveyor;
  /** The queue the real Celery worker consumes. */
  readonly pyQueue: string;
  /** The queue Conveyor's worker consumes (the app's default queue). */
  readonly tsQueue: string;
  /** The Python worker, for its output. */
  readonly python: PythonCeleryWorker;
  /** Ids whose results are deleted after the file. */
  readonly taskIds: string[];
  /** Remembers a result's id for cleanup and returns the result. */
  track<T extends { id: string }>(result: T): T;
}

/**
 * Registers the lifecycle of an interop test file: a Conveyor app and worker, a real Python
 * Celery worker, each on its own uuid-named queue, started before the file's tests; queues
 * (`extraQueues` too), delay namespace and result keys removed after them.
 */
export function useCeleryInterop(
  label: string,
  options: Pick<ConveyorOptions, 'tasks' | 'validate'> & { extraQueues?: string[] },
): InteropScope {
  const pyQueue = `${label}-py-${randomUUID()}`;
  const tsQueue = `${label}-ts-${randomUUID()}`;
  const namespace = delayNamespace();
  const python = new PythonCeleryWorker(pyQueue);
  const taskIds: string[] = [];
  // Building the app opens no connection: they open on the first use, in beforeAll.
  const app = new Conveyor({
    broker: new AmqpTransport({ url: AMQP_URL, delayNamespace: namespace }),
    // Celery's own key layout: the default prefix is celery-task-meta-.
    backend: new RedisResultBackend({ url: REDIS_URL }),
    tasks: options.tasks,
    validate: options.validate,
    defaultQueue: tsQueue,
  });

  beforeAll(async () => {
    await Promise.all([
      app.worker({ handleSignals: false, concurrency: 4 }).start(),
      python.start(),
    ]);
  }, 60_000);

  afterAll(async () => {
    await python.stop();
    await app.close();
    await removeQueues([pyQueue, tsQueue, ...(options.extraQueues ?? [])]);
    await removeDelayNamespace(namespace);
    for (const id of taskIds) await deleteRedisKeys(`celery-task-meta-${id}`);
  }, 60_000);

  return {
    app,
    pyQueue,
    tsQueue,
    python,
    taskIds,
    track: (result) => {
      taskIds.push(result.id);
      return result;
    },
  };
}
