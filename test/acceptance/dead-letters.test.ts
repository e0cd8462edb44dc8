import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { AmqpTransport } from '@conveyor/amqp-transport';
import {
  Conveyor,
  DEAD_LETTER_REASON_HEADER,
  DeadLetters,
  Task,
  TaskFailedError,
  deadLetterQueueName,
  type AsyncResult,
  type Worker,
  type WorkerOptions,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { RedisResultBackend } from '@conveyor/result-redis';
import {
  readyCount,
  removeDelayNamespace,
  removeQueues,
  withRawChannel,
} from '../support/rabbitmq';
import { deleteRedisKeys, redisTestPrefix } from '../support/redis';
import { AMQP_URL, REDIS_URL } from '../support/services';
import { withDeliveryLimit } from '../support/quorum-policy';

@Task({ name: 'dlq.echo' })
class Echo {
  run(text: string): string {
    return `echo ${text}`;
  }
}

/** Holds its runs until the test opens it. */
const gate = { open: () => undefined as void, opened: Promise.resolve() };
function closeGate(): void {
  gate.opened = new Promise((resolve) => (gate.open = resolve));
}

@Task({ name: 'dlq.gated' })
class Gated {
  async run(n: number): Promise<number> {
    await gate.opened;
    return n;
  }
}

/**
 * One queue per test, with a producer app that knows `dlq.echo` and a worker app that knows no
 * task at all: whatever it receives it dead-letters (NotRegistered) with FAILURE stored.
 */
class Scene {
  readonly queue = `dlq-test-${randomUUID()}`;
  readonly namespace = `dlq-test-delay-${randomUUID()}`;
  readonly prefix = redisTestPrefix();
  private readonly apps: Conveyor[] = [];
  private readonly workers: Worker[] = [];

  app(tasks: Array<new () => object> = [Echo], queueType?: 'quorum'): Conveyor {
    const app = new Conveyor({
      broker: new AmqpTransport({
        url: AMQP_URL,
        delayNamespace: this.namespace,
        queueType,
        onError: () => undefined,
      }),
      backend: new RedisResultBackend({
        url: REDIS_URL,
        keyPrefix: `${this.prefix}celery-task-meta-`,
        groupKeyPrefix: `${this.prefix}celery-taskset-meta-`,
      }),
      tasks,
      defaultQueue: this.queue,
    });
    this.apps.push(app);
    return app;
  }

  /** Starts a worker on the queue; `beforeStart` may listen to it before any delivery. */
  async worker(
    app: Conveyor,
    options: WorkerOptions = {},
    beforeStart?: (worker: Worker) => void,
  ): Promise<Worker> {
    const worker = app.worker({ queues: [this.queue], concurrency: 4, ...options });
    this.workers.push(worker);
    beforeStart?.(worker);
    await worker.start();
    return worker;
  }

  deadLetters(app: Conveyor): DeadLetters {
    return new DeadLetters({ transport: app.transport, backend: app.backend });
  }

  async stopWorkers(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.stop()));
  }

  async cleanup(): Promise<void> {
    await this.stopWorkers();
    await Promise.all(this.apps.splice(0).map((a) => a.close()));
    await removeQueues([this.queue]);
    await removeDelayNamespace(this.namespace);
    await deleteRedisKeys(this.prefix);
  }
}

/** Sends `texts` to a worker that knows no task, and waits until all are dead-lettered. */
async function deadLettered(scene: Scene, texts: string[]) {
  const producer = scene.app();
  const blind = scene.app([]);
  await scene.worker(blind);
  const results = await Promise.all(texts.map((t) => producer.client(Echo).delay(t)));
  for (const result of results) {
    await expect(result.get({ timeoutMs: 10_000 })).rejects.toBeInstanceOf(TaskFailedError);
  }
  await waitFor(
    async () => (await readyCount(deadLetterQueueName(scene.queue))) === texts.length,
    'every message in <queue>.dead',
  );
  await scene.stopWorkers();
  return { producer, results };
}

describe('the redelivery cap on RabbitMQ: what a graceful stop gives back', () => {
  let scene: Scene;
  beforeEach(() => {
    scene = new Scene();
  });
  afterEach(() => {
    gate.open();
    return scene.cleanup();
  });

  it('does not count the messages a stopping worker had received but not started', async () => {
    const app = scene.app([Gated]);
    // One runs, the others wait in the worker (prefetched); a cap of 1 dead-letters any message
    // whose earlier delivery counted.
    const options = { concurrency: 1, prefetchMultiplier: 4, maxDeliveries: 1 };
    const results: Array<AsyncResult<number>> = [];
    for (let stop = 0; stop < 2; stop += 1) {
      closeGate();
      let received = 0;
      const worker = await scene.worker(app, options, (w) =>
        w.on('task-received', () => (received += 1)),
      );
      if (stop === 0) {
        for (let n = 0; n < 3; n += 1) results.push(await app.client(Gated).delay(n));
      }
      await waitFor(() => received === 3 - stop, 'every queued message received');
      const stopping = worker.stop();
      gate.open();
      await stopping;
    }
    await scene.worker(app, options);
    expect(await Promise.all(results.map((r) => r.get({ timeoutMs: 10_000 })))).toEqual([0, 1, 2]);
    expect(await readyCount(deadLetterQueueName(scene.queue))).toBe(0);
  });
});

describe('dead letters on RabbitMQ: list, replay, purge', () => {
  let scene: Scene;
  beforeEach(() => {
    scene = new Scene();
  });
  afterEach(() => scene.cleanup());

  it('lists worker dead letters by page with id, task, reason and time, and removes nothing', async () => {
    const before = Date.now();
    const { producer, results } = await deadLettered(scene, ['a', 'b', 'c', 'd', 'e']);
    const dlq = scene.deadLetters(producer);
    const first = await dlq.list(scene.queue, { limit: 2 });
    expect(first.total).toBe(5);
    expect(first.nextOffset).toBe(2);
    const second = await dlq.list(scene.queue, { offset: 2, limit: 2 });
    const third = await dlq.list(scene.queue, { offset: 4, limit: 2 });
    expect(third.nextOffset).toBeUndefined();
    const items = [...first.items, ...second.items, ...third.items];
    expect(items.map((d) => d.id)).toEqual(results.map((r) => r.id));
    for (const item of items) {
      expect(item.task).toBe('dlq.echo');
      expect(item.deadLetteredBy).toBe('worker');
      expect(item.reason).toMatch(/dlq\.echo/);
      expect(item.message.headers[DEAD_LETTER_REASON_HEADER]).toBe(item.reason);
      expect(item.deadLetteredAt!.getTime()).toBeGreaterThanOrEqual(before);
    }
    // Reading took nothing away, and kept the order.
    expect(await readyCount(deadLetterQueueName(scene.queue))).toBe(5);
    expect((await dlq.list(scene.queue)).items.map((d) => d.id)).toEqual(results.map((r) => r.id));
  });

  it('replays by id under the same id: the stored FAILURE is reset and get() sees the new run', async () => {
    const { producer, results } = await deadLettered(scene, ['one', 'two']);
    const dlq = scene.deadLetters(producer);
    const [one, two] = results;
    const report = await dlq.replay(scene.queue, { ids: [one!.id, 'no-such-id'] });
    expect(report.replayed).toEqual([{ id: one!.id }]);
    expect(report.notFound).toEqual(['no-such-id']);
    // The FAILURE is gone before any worker runs it: the caller now waits.
    expect(await one!.state()).toBe('PENDING');
    await scene.worker(scene.app());
    await expect(one!.get({ timeoutMs: 10_000 })).resolves.toBe('echo one');
    // The other dead letter is still there, untouched, with its FAILURE.
    const left = await dlq.list(scene.queue);
    expect(left.items.map((d) => d.id)).toEqual([two!.id]);
    await expect(two!.get({ timeoutMs: 1_000 })).rejects.toBeInstanceOf(TaskFailedError);
  });

  it('replays all under new ids: the old FAILUREs stay, the new ids succeed, the queue is empty', async () => {
    const { producer, results } = await deadLettered(scene, ['x', 'y', 'z']);
    const dlq = scene.deadLetters(producer);
    await scene.worker(scene.app());
    const report = await dlq.replay(scene.queue, { all: true }, { newId: true });
    expect(report.replayed.map((r) => r.id)).toEqual(results.map((r) => r.id));
    expect(await readyCount(deadLetterQueueName(scene.queue))).toBe(0);
    for (const [i, r] of report.replayed.entries()) {
      expect(r.newId).not.toBe(r.id);
      const meta = await producer.backend!.waitForReady(r.newId!, 10_000);
      expect(meta).toMatchObject({ status: 'SUCCESS', result: `echo ${['x', 'y', 'z'][i]}` });
      await expect(results[i]!.get({ timeoutMs: 1_000 })).rejects.toBeInstanceOf(TaskFailedError);
    }
  });

  it('purges by id, then all, and leaves the rest', async () => {
    const { producer, results } = await deadLettered(scene, ['p', 'q', 'r']);
    const dlq = scene.deadLetters(producer);
    const byId = await dlq.purge(scene.queue, { ids: [results[1]!.id] });
    expect(byId).toEqual({ purged: 1, notFound: [] });
    expect((await dlq.list(scene.queue)).items.map((d) => d.id)).toEqual([
      results[0]!.id,
      results[2]!.id,
    ]);
    expect(await dlq.purge(scene.queue, { all: true })).toEqual({ purged: 2, notFound: [] });
    expect(await readyCount(deadLetterQueueName(scene.queue))).toBe(0);
  });

  it('lists and replays a message the broker dead-lettered past a quorum delivery limit (x-death)', async () => {
    const producer = scene.app([Echo], 'quorum');
    await producer.transport.declareQueue({ name: scene.queue, queueType: 'quorum' });
    await withDeliveryLimit(scene.queue, 1, async () => {
      const result = await producer.client(Echo).delay('bounced');
      // A consumer that gives the message back each time: RabbitMQ counts the returns.
      await withRawChannel(async (channel) => {
        await channel.consume(scene.queue, (m) => m && channel.nack(m, false, true));
        await waitFor(
          async () => (await readyCount(deadLetterQueueName(scene.queue))) === 1,
          'the broker to dead-letter it',
        );
      });
      const dlq = scene.deadLetters(producer);
      const { items } = await dlq.list(scene.queue);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ id: result.id, task: 'dlq.echo', deadLetteredBy: 'broker' });
      expect(items[0]!.reason).toMatch(/delivery_limit/);
      expect(items[0]!.deadLetteredAt).toBeInstanceOf(Date);
      expect(items[0]!.message.headers['x-death']).toBeDefined();
      await dlq.replay(scene.queue, { all: true });
      await scene.worker(scene.app([Echo], 'quorum'));
      await expect(result.get({ timeoutMs: 10_000 })).resolves.toBe('echo bounced');
    });
  });
});
