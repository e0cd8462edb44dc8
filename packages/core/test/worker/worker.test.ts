import { randomUUID } from 'node:crypto';
import {
  ConfigError,
  Conveyor,
  DEAD_LETTER_REASON_HEADER,
  DELIVERY_COUNT_HEADER,
  defaults,
  EventReceiver,
  ConnectionError,
  MemoryResultBackend,
  MemoryTransport,
  NotRegisteredError,
  Task,
  TaskFailedError,
  TaskRevokedError,
  TaskService,
  taskContext,
  TimeoutError,
  type ResultMeta,
  type TaskContext,
  type Worker,
  type WorkerStoppedEvent,
  type WorkerStoppingEvent,
} from '@conveyor/core';
import { sleep, waitFor } from '@conveyor/core/testing';
import { deadLetters, queued } from './fixtures';
import { celeryWireReference } from '../../../../test/support/celery-reference';

const reference = celeryWireReference();

class InventoryError extends Error {
  override name = 'InventoryError';
}

const gate = { running: 0, peak: 0, release: Promise.resolve() as Promise<void> };
let seenContext: TaskContext | undefined;

@TaskService({ name: 'shop' })
class Shop {
  @Task()
  add(a: number, b: number): number {
    return a + b;
  }

  @Task()
  reserve(sku: string): never {
    throw new InventoryError(`out of stock: ${sku}`);
  }

  @Task()
  async slow(ms: number): Promise<string> {
    gate.running += 1;
    gate.peak = Math.max(gate.peak, gate.running);
    try {
      await sleep(ms);
      return `slept ${ms}`;
    } finally {
      gate.running -= 1;
    }
  }

  @Task({ trackStarted: true })
  async tracked(): Promise<string> {
    await gate.release;
    return 'done';
  }

  @Task()
  async cancellable(): Promise<string> {
    const { signal } = taskContext();
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
    return 'aborted';
  }

  @Task({ acks: 'early' })
  async early(): Promise<string> {
    await gate.release;
    return 'early';
  }

  @Task()
  context(): string {
    seenContext = taskContext();
    return seenContext.id;
  }
}

@TaskService({ name: 'metered' })
class Metered {
  // 10/s: the second of a burst waits 100 ms for its slot, in the worker.
  @Task({ rateLimit: '10/s' })
  tick(n: number): number {
    return n;
  }
}

describe('Worker', () => {
  let app: Conveyor;
  let transport: MemoryTransport;
  const started: Array<{ stop(): Promise<number> }> = [];
  const startWorker = async (options: Parameters<Conveyor['worker']>[0] = {}) => {
    const worker = app.worker({ handleSignals: false, ...options });
    await worker.start();
    started.push(worker);
    return worker;
  };
  /** The stop events of `worker`, in order, with their payloads. */
  const recordStop = (worker: Worker) => {
    const events: Array<[string, WorkerStoppingEvent | WorkerStoppedEvent]> = [];
    worker.on('worker-stopping', (e) => events.push(['worker-stopping', e]));
    worker.on('worker-stopped', (e) => events.push(['worker-stopped', e]));
    return events;
  };

  /**
   * Makes the broker slow to start consumers: `before(queue, nth)` runs before each consume (a
   * sleep, or a throw to fail it). Returns the queues asked for so far, in order.
   */
  const slowConsumers = (before: (queue: string, nth: number) => Promise<void>): string[] => {
    const consume = transport.consume.bind(transport);
    const asked: string[] = [];
    jest.spyOn(transport, 'consume').mockImplementation(async (queue, handler, options) => {
      asked.push(queue);
      await before(queue, asked.length);
      return consume(queue, handler, options);
    });
    return asked;
  };
  /** The consumers of `queue` the memory broker has now. */
  const consumersOf = (queue: string): number => transport.broker.queue(queue)?.consumerCount ?? 0;

  beforeEach(() => {
    transport = new MemoryTransport();
    app = new Conveyor({ broker: transport, tasks: [Shop] });
    gate.running = 0;
    gate.peak = 0;
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((w) => w.stop()));
    await app.close();
  });

  describe('results', () => {
    it('stores SUCCESS as the Celery meta document', async () => {
      await startWorker();
      const result = await app.client(Shop).add.delay(4, 5);
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe(9);
      const meta = await app.backend!.get(result.id);
      expect(Object.keys(meta!).sort()).toEqual(Object.keys(reference.success_meta).sort());
      expect(meta).toMatchObject({
        status: 'SUCCESS',
        result: 9,
        traceback: null,
        children: [],
        task_id: result.id,
      });
      expect(meta!.date_done).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    });

    it('refuses a negative or NaN get() timeout with ConfigError instead of timing out at once', async () => {
      const result = await app.client(Shop).add.delay(4, 5);
      for (const timeoutMs of [-1, Number.NaN]) {
        await expect(result.get({ timeoutMs })).rejects.toBeInstanceOf(ConfigError);
      }
      await startWorker();
      await expect(result.get({ timeoutMs: Number.POSITIVE_INFINITY })).resolves.toBe(9);
    });

    it('adds the extended fields when resultExtended is on', async () => {
      app = new Conveyor({ broker: transport, tasks: [Shop], resultExtended: true });
      const worker = await startWorker();
      const result = await app.client(Shop).add.delay(1, 2);
      await result.get({ timeoutMs: 5_000 });
      await expect(app.backend!.get(result.id)).resolves.toMatchObject({
        name: 'shop.add',
        args: [1, 2],
        kwargs: {},
        worker: worker.hostname,
        retries: 0,
        queue: 'celery',
      });
    });

    it('stores FAILURE with exc_type, exc_message and the stack; get() throws TaskFailedError with them', async () => {
      await startWorker();
      const result = await app.client(Shop).reserve.delay('sku-1');
      const error = (await result
        .get({ timeoutMs: 5_000 })
        .catch((e: unknown) => e)) as TaskFailedError;
      expect(error).toBeInstanceOf(TaskFailedError);
      expect(error.code).toBe('CONVEYOR_ERR_TASK_FAILED');
      expect(error.taskId).toBe(result.id);
      expect(error.excType).toBe('InventoryError');
      expect(error.excMessage).toEqual(['out of stock: sku-1']);
      expect(error.remoteTraceback).toContain('InventoryError: out of stock: sku-1');
      expect(error.remoteTraceback).toContain('reserve');
      const meta = await app.backend!.get(result.id);
      expect(Object.keys(meta!).sort()).toEqual(Object.keys(reference.failure_meta).sort());
      expect(Object.keys(meta!.result as object).sort()).toEqual(
        Object.keys(reference.failure_meta.result as object).sort(),
      );
    });

    it('returns the error instead of throwing with propagate: false', async () => {
      await startWorker();
      const result = await app.client(Shop).reserve.delay('sku-2');
      const value = await result.get({ timeoutMs: 5_000, propagate: false });
      expect(value).toBeInstanceOf(TaskFailedError);
      await expect(result.failed()).resolves.toBe(true);
      await expect(result.state()).resolves.toBe('FAILURE');
    });

    it('reads a FAILURE written by Python Celery as a TaskFailedError with the Python traceback', async () => {
      const id = randomUUID();
      await app.backend!.store({ ...reference.failure_meta, task_id: id });
      const error = (await app
        .result(id)
        .get({ timeoutMs: 1_000 })
        .catch((e: unknown) => e)) as TaskFailedError;
      expect(error).toMatchObject({
        excType: 'ValueError',
        excMessage: ['boom'],
        excModule: 'builtins',
      });
      expect(error.remoteTraceback).toContain('raise ValueError(msg)');
    });

    it('throws TimeoutError naming the task and its last known state', async () => {
      const pending = await app.client(Shop).add.delay(1, 1);
      await expect(pending.get({ timeoutMs: 200 })).rejects.toThrow(
        new TimeoutError(pending.id, 'PENDING', 200).message,
      );
      let release!: () => void;
      gate.release = new Promise((resolve) => (release = resolve));
      await startWorker();
      const running = await app.client(Shop).tracked.delay();
      await waitFor(async () => (await running.state()) === 'STARTED', 'STARTED');
      const error = await running.get({ timeoutMs: 100 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      expect(error).toMatchObject({ taskId: running.id, lastState: 'STARTED' });
      release();
      await expect(running.get({ timeoutMs: 5_000 })).resolves.toBe('done');
    });

    it('forgets a result', async () => {
      await startWorker();
      const result = await app.client(Shop).add.delay(2, 2);
      await result.get({ timeoutMs: 5_000 });
      await result.forget();
      await expect(result.state()).resolves.toBe('PENDING');
    });
  });

  describe('bad input', () => {
    it('stores an unknown task as FAILURE NotRegistered, dead-letters it, and keeps running', async () => {
      await startWorker();
      const unknown = await app.send('shop.nope', [1], { queue: 'celery' });
      const error = await unknown.get({ timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotRegisteredError);
      const meta = await app.backend!.get(unknown.id);
      expect(meta!.result).toEqual({
        ...(reference.unknown_task_meta_result as object),
        exc_message: ['shop.nope'],
      });
      await waitFor(() => deadLetters(transport, 'celery').length === 1, 'the dead letter');
      const dead = deadLetters(transport, 'celery')[0]!;
      expect(dead.headers.id).toBe(unknown.id);
      expect(dead.headers[DEAD_LETTER_REASON_HEADER]).toContain(
        "task 'shop.nope' is not registered",
      );
      await expect(
        (await app.client(Shop).add.delay(1, 2)).get({ timeoutMs: 5_000 }),
      ).resolves.toBe(3);
      expect(queued(transport, 'celery')).toHaveLength(0);
    });

    it('dead-letters malformed messages with the reason and keeps running', async () => {
      const worker = await startWorker();
      const rejected: string[] = [];
      worker.on('message-rejected', (e) => rejected.push(e.reason));
      await app.transport.declareQueue({ name: 'celery' });
      await transport.publish(
        {
          headers: { task: 'shop.add', id: 'x1' },
          properties: { contentType: 'application/json' },
          body: Buffer.from('{oops'),
        },
        { queue: 'celery' },
      );
      await transport.publish(
        { headers: {}, properties: { contentType: 'text/plain' }, body: Buffer.from('hello') },
        { queue: 'celery' },
      );
      await waitFor(() => deadLetters(transport, 'celery').length === 2, 'two dead letters');
      const reasons = deadLetters(transport, 'celery').map(
        (m) => m.headers[DEAD_LETTER_REASON_HEADER],
      );
      expect(reasons[0]).toMatch(/body is not valid JSON/);
      expect(reasons[1]).toMatch(/content type 'text\/plain'/);
      expect(rejected).toEqual(reasons);
      await expect(
        (await app.client(Shop).add.delay(2, 3)).get({ timeoutMs: 5_000 }),
      ).resolves.toBe(5);
    });
  });

  describe('concurrency', () => {
    it('runs 1,000 tasks with concurrency 8, never more than 8 at once, all completed', async () => {
      const worker = await startWorker({ concurrency: 8 });
      let active = 0;
      let peak = 0;
      worker.on('task-started', () => {
        active += 1;
        peak = Math.max(peak, active);
      });
      worker.on('task-succeeded', () => (active -= 1));
      const results = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) => app.client(Shop).slow.delay(i % 3)),
      );
      const values = await Promise.all(results.map((r) => r.get({ timeoutMs: 30_000 })));
      expect(values).toHaveLength(1_000);
      expect(new Set(results.map((r) => r.id)).size).toBe(1_000);
      expect(gate.peak).toBe(8);
      expect(peak).toBe(8);
    });
  });

  describe('acknowledgement', () => {
    /** Records the order of result stores and message settlements. */
    const recordOrder = (order: string[], backend: MemoryResultBackend, failFirst: number) => {
      let failures = failFirst;
      const recording = Object.assign(Object.create(backend) as MemoryResultBackend, {
        store: async (meta: ResultMeta) => {
          if (meta.status === 'SUCCESS' && failures-- > 0) {
            order.push('store failed');
            throw new Error('store down');
          }
          await backend.store(meta);
          order.push(`stored ${meta.status}`);
        },
      });
      const consume = transport.consume.bind(transport);
      jest.spyOn(transport, 'consume').mockImplementation((queue, handler, options) =>
        consume(
          queue,
          (delivery) =>
            handler({
              message: delivery.message,
              queue: delivery.queue,
              redelivered: delivery.redelivered,
              ack: () => (order.push('ack'), delivery.ack()),
              requeue: () => (order.push('requeue'), delivery.requeue()),
              deadLetter: (reason) => (order.push('dead-letter'), delivery.deadLetter(reason)),
            }),
          options,
        ),
      );
      return recording;
    };

    it('acks a late-ack task only after its result is stored, retrying the store', async () => {
      const order: string[] = [];
      app = new Conveyor({
        broker: transport,
        backend: recordOrder(order, new MemoryResultBackend(), 2),
        tasks: [Shop],
      });
      const worker = await startWorker();
      const errors: string[] = [];
      worker.on('worker-error', (e) => errors.push(e.message));
      const result = await app.client(Shop).add.delay(20, 22);
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe(42);
      await waitFor(() => order.includes('ack'), 'the ack');
      expect(order).toEqual(['store failed', 'store failed', 'stored SUCCESS', 'ack']);
      expect(errors).toEqual(['store down', 'store down']);
    });

    it('gives the message back, unacked, when the result cannot be stored in time', async () => {
      const order: string[] = [];
      app = new Conveyor({
        broker: transport,
        backend: recordOrder(order, new MemoryResultBackend(), 1_000),
        tasks: [Shop],
      });
      const worker = await startWorker({ resultStoreTimeoutMs: 200 });
      const errors: string[] = [];
      worker.on('worker-error', (e) => errors.push(e.message));
      await app.client(Shop).add.delay(1, 1);
      await waitFor(() => order.includes('requeue'), 'the requeue', 5_000);
      await worker.stop();
      // Requeued, it may come straight back and fail again: then the redelivered message is acked
      // only once a copy carrying its delivery count is in the queue. The task never leaves it.
      expect(order).toContain('requeue');
      expect(errors.at(-1)).toMatch(/could not be stored; message requeued/);
      const back = transport.broker.queue('celery')!.peek();
      expect(back).toHaveLength(1);
      expect(
        back[0]!.redelivered || Number(back[0]!.message.headers[DELIVERY_COUNT_HEADER]) >= 1,
      ).toBe(true);
      expect(back[0]!.message.headers.task).toBe('shop.add');
    });

    it('acks an early-ack task before it runs, so a shutdown does not requeue it', async () => {
      let release!: () => void;
      gate.release = new Promise((resolve) => (release = resolve));
      const worker = await startWorker({ shutdownTimeoutMs: 50 });
      const stops = recordStop(worker);
      await app.client(Shop).early.delay();
      await waitFor(() => worker.activeCount === 1, 'running');
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_SHUTDOWN_TIMEOUT);
      expect(queued(transport, 'celery')).toHaveLength(0);
      // Aborted, but its message was acked before it ran: not requeued, and said so.
      expect(stops[1]).toEqual([
        'worker-stopped',
        { exitCode: defaults.EXIT_SHUTDOWN_TIMEOUT, aborted: 1, requeued: 0, unstarted: 0 },
      ]);
      release();
    });
  });

  describe('task context', () => {
    it('gives the running task its id, attempt, headers and an AbortSignal', async () => {
      await startWorker();
      const result = await app.client(Shop).context.delay();
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe(result.id);
      expect(seenContext).toMatchObject({
        id: result.id,
        name: 'shop.context',
        attempt: 1,
        retries: 0,
        queue: 'celery',
      });
      expect(seenContext!.headers.task).toBe('shop.context');
      expect(seenContext!.signal).toBeInstanceOf(AbortSignal);
      expect(seenContext!.rootId).toBe(result.id);
    });

    it('is not available outside a task', () => {
      expect(() => taskContext()).toThrow('taskContext() was called outside a running task');
    });
  });

  describe('time', () => {
    it('runs a countdown task no earlier than its countdown', async () => {
      await startWorker();
      const sent = Date.now();
      const result = await app.client(Shop).add.applyAsync([1, 1], { countdownMs: 400 });
      await result.get({ timeoutMs: 5_000 });
      const meta = await app.backend!.get(result.id);
      expect(Date.parse(`${meta!.date_done!}Z`)).toBeGreaterThanOrEqual(sent + 400);
    });

    it('moves a message that arrives with a future eta back into the broker and keeps serving others', async () => {
      await startWorker({ concurrency: 1 });
      const eta = new Date(Date.now() + 600);
      const transportPublish = jest.spyOn(transport, 'publish');
      // As a Python producer sends it: an eta header, delivered at once.
      const { Producer } = await import('../../src/producer/producer');
      const { encodeTaskMessage } = await import('@conveyor/core');
      const { message } = new Producer(transport, new Map()).build({
        name: 'shop.add',
        args: [5, 5],
        kwargs: {},
        options: { eta },
        queue: 'celery',
      });
      await transport.declareQueue({ name: 'celery' });
      await transport.publish(encodeTaskMessage(message), { queue: 'celery' });
      const other = await app.client(Shop).add.delay(1, 2);
      await expect(other.get({ timeoutMs: 5_000 })).resolves.toBe(3);
      const late = app.result<number>(message.headers.id);
      await expect(late.get({ timeoutMs: 5_000 })).resolves.toBe(10);
      const redelayed = transportPublish.mock.calls.find(
        ([, options]) => options.deliverAt === eta.getTime(),
      );
      expect(redelayed).toBeDefined();
      const meta = await app.backend!.get(message.headers.id);
      expect(Date.parse(`${meta!.date_done!}Z`)).toBeGreaterThanOrEqual(eta.getTime());
    });

    it('ends a task that arrives expired at once, even with its eta still ahead (as Celery does)', async () => {
      await startWorker();
      // As a Python producer sends it: on the queue at once, with its eta and expiry in headers.
      const { Producer } = await import('../../src/producer/producer');
      const { encodeTaskMessage } = await import('@conveyor/core');
      const { message } = new Producer(transport, new Map()).build({
        name: 'shop.add',
        args: [1, 1],
        kwargs: {},
        options: { eta: new Date(Date.now() + 60_000), expires: new Date(Date.now() - 1_000) },
        queue: 'celery',
      });
      await transport.publish(encodeTaskMessage(message), { queue: 'celery' });
      // Sent back to the broker until its eta, it would be ended only a minute from now.
      const result = app.result<number>(message.headers.id);
      await expect(result.get({ timeoutMs: 5_000 })).rejects.toMatchObject({ reason: 'expired' });
    });

    it('does not run an expired task: REVOKED with the reason, get() throws TaskRevokedError', async () => {
      const worker = await startWorker();
      const revoked: string[] = [];
      worker.on('task-revoked', (e) => revoked.push(e.reason!));
      const result = await app
        .client(Shop)
        .add.applyAsync([1, 1], { expires: new Date(Date.now() - 1_000) });
      const error = await result.get({ timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskRevokedError);
      expect(error).toMatchObject({ reason: 'expired' });
      expect(revoked).toEqual(['expired']);
      await expect(app.backend!.get(result.id)).resolves.toMatchObject({
        status: 'REVOKED',
        result: {
          exc_type: 'TaskRevokedError',
          exc_message: ['expired'],
          exc_module: 'celery.exceptions',
        },
      });
    });
  });

  describe('result expiry', () => {
    it('asks a backend that needs it to sweep expired results periodically, and stops on stop()', async () => {
      let sweeps = 0;
      const backend = Object.assign(new MemoryResultBackend(), {
        sweepExpired: async () => {
          sweeps += 1;
        },
      });
      app = new Conveyor({ broker: transport, backend, tasks: [Shop] });
      const worker = await startWorker({ expirySweepIntervalMs: 40 });
      await waitFor(() => sweeps >= 3, 'three sweeps');
      await worker.stop();
      const after = sweeps;
      await sleep(150);
      expect(sweeps).toBe(after);
    });
  });

  describe('stop()', () => {
    it('finishes in-flight tasks, requeues the rest, and another worker completes them: nothing lost', async () => {
      const first = await startWorker({ concurrency: 4, prefetchMultiplier: 2 });
      const stops = recordStop(first);
      const results = await Promise.all(
        Array.from({ length: 30 }, () => app.client(Shop).slow.delay(150)),
      );
      await waitFor(() => first.activeCount === 4, 'four running');
      await waitFor(() => first.prefetchedCount === 4, 'four more prefetched');
      await expect(first.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      expect(stops).toEqual([
        [
          'worker-stopping',
          { running: 4, timeoutMs: defaults.DEFAULT_SHUTDOWN_TIMEOUT_MS, forced: false },
        ],
        ['worker-stopped', { exitCode: 0, aborted: 0, requeued: 0, unstarted: 4 }],
      ]);
      const states = await Promise.all(results.map((r) => r.state()));
      expect(states.filter((s) => s === 'SUCCESS')).toHaveLength(4);
      expect(queued(transport, 'celery')).toHaveLength(26);
      await startWorker({ concurrency: 10 });
      const values = await Promise.all(results.map((r) => r.get({ timeoutMs: 10_000 })));
      expect(values.every((v) => v === 'slept 150')).toBe(true);
    });

    it('counts a delivery that arrives after the stop began, before its consumer is cancelled, as unstarted', async () => {
      const { Producer } = await import('../../src/producer/producer');
      const { encodeTaskMessage } = await import('@conveyor/core');
      const { message } = new Producer(transport, new Map()).build({
        name: 'shop.add',
        args: [1, 2],
        kwargs: {},
        options: {},
        queue: 'celery',
      });
      const consume = transport.consume.bind(transport);
      let deliver: ((queue: string) => void) | undefined;
      jest.spyOn(transport, 'consume').mockImplementation(async (queue, handler, options) => {
        deliver = (q) =>
          handler({
            message: encodeTaskMessage(message),
            queue: q,
            redelivered: false,
            ack: async () => undefined,
            requeue: async () => undefined,
            deadLetter: async () => undefined,
          });
        return consume(queue, handler, options);
      });
      const worker = await startWorker();
      const stops = recordStop(worker);
      // The broker delivers one more message as the stop begins, before the cancel reaches it.
      worker.on('worker-stopping', () => deliver!('celery'));
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      expect(stops[1]).toEqual([
        'worker-stopped',
        { exitCode: 0, aborted: 0, requeued: 0, unstarted: 1 },
      ]);
      await waitFor(
        () => queued(transport, 'celery').some((m) => m.headers.id === message.headers.id),
        'the late delivery back in its queue',
      );
    });

    it('counts a job held for its rate-limit slot as unstarted when the slot comes during the stop', async () => {
      await app.close();
      app = new Conveyor({ broker: transport, tasks: [Metered] });
      const consume = transport.consume.bind(transport);
      jest.spyOn(transport, 'consume').mockImplementation(async (queue, handler, options) => {
        const consumer = await consume(queue, handler, options);
        // Deliveries stop at once, but the broker is slow to confirm: the held job's slot comes
        // meanwhile.
        return { cancel: async () => (await consumer.cancel(), await sleep(250)) };
      });
      const worker = await startWorker();
      const stops = recordStop(worker);
      const client = app.client(Metered);
      const [first, second] = await Promise.all([client.tick.delay(1), client.tick.delay(2)]);
      await expect(first!.get({ timeoutMs: 5_000 })).resolves.toBe(1);
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      expect(stops[1]).toEqual([
        'worker-stopped',
        { exitCode: 0, aborted: 0, requeued: 0, unstarted: 1 },
      ]);
      await waitFor(
        () => queued(transport, 'celery').some((m) => m.headers.id === second!.id),
        'the held task back in its queue',
      );
    });

    it('cancels a consumer that finishes starting after a stop began, so a message is not bounced back and forth', async () => {
      slowConsumers(() => sleep(50));
      const result = await app.client(Shop).add.delay(1, 2);
      const publish = jest.spyOn(transport, 'publish');
      const worker = app.worker({ handleSignals: false });
      const starting = worker.start();
      await sleep(10);
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      await starting;
      await sleep(200);
      // The message is where it was, once; before, each delivery went back to the queue at once
      // and was delivered again, thousands of times.
      expect(queued(transport, 'celery').map((m) => m.headers.id)).toEqual([result.id]);
      expect(publish).not.toHaveBeenCalled();
    });

    it('ends a start stopped during its backend connect without waiting for it: nothing consumed, no heartbeat or answer', async () => {
      const backend = new MemoryResultBackend();
      const connect = backend.connect.bind(backend);
      const order: string[] = [];
      jest.spyOn(backend, 'connect').mockImplementation(async () => {
        await sleep(50); // a slow result backend
        await connect();
        order.push('connected');
      });
      await app.close();
      app = new Conveyor({ broker: transport, backend, tasks: [Shop] });
      const events: string[] = [];
      const receiver = new EventReceiver(new MemoryTransport({ broker: transport.broker }), {
        wakeup: false,
      });
      receiver.on('*', (e) => events.push(e.type));
      await receiver.start();
      const result = await app.client(Shop).add.delay(1, 2);
      const publish = jest.spyOn(transport, 'publish');
      const worker = app.worker({ handleSignals: false, heartbeatIntervalMs: 20 });
      const starting = worker.start();
      await sleep(10);
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      order.push('stopped');
      await starting;
      expect(order).toEqual(['stopped', 'connected']);
      expect(worker.running).toBe(false);
      await sleep(200);
      expect(queued(transport, 'celery').map((m) => m.headers.id)).toEqual([result.id]);
      expect(publish).not.toHaveBeenCalled();
      expect(await app.control.ping({ timeoutMs: 200 })).toEqual([]);
      // Stopped before it came online: no worker-online, no heartbeats, nothing to take back.
      expect(events.filter((e) => e.startsWith('worker-'))).toEqual([]);
      await receiver.stop();
    });

    it('starts no further queue once a stop began while one was starting', async () => {
      const asked = slowConsumers(async (queue) => {
        if (queue !== 'celery') await sleep(50);
      });
      for (const queue of ['b', 'c']) await transport.declareQueue({ name: queue });
      const results = await Promise.all([1, 2, 3].map((n) => app.client(Shop).add.delay(n, n)));
      const publish = jest.spyOn(transport, 'publish');
      const worker = app.worker({ handleSignals: false, queues: ['celery', 'b', 'c'] });
      const starting = worker.start();
      await waitFor(() => asked.includes('b'), "the 'b' consumer starting");
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      await starting;
      await sleep(150);
      expect(asked).toEqual(['celery', 'b']);
      // What the consumer of 'celery' took before the stop ran or went back once; nothing since.
      const calls = publish.mock.calls.length;
      expect(calls).toBeLessThanOrEqual(results.length);
      await sleep(100);
      expect(publish.mock.calls.length).toBe(calls);
    });

    it('resolves a stop during a queue declare only once that consume has ended: none starts after', async () => {
      const declare = transport.declareQueue.bind(transport);
      let declaring = false;
      jest.spyOn(transport, 'declareQueue').mockImplementation(async (queue) => {
        if (queue.name === 'b') {
          declaring = true;
          await sleep(50); // the broker is slow to declare it
        }
        return declare(queue);
      });
      const consume = jest.spyOn(transport, 'consume');
      const worker = app.worker({ handleSignals: false, queues: ['celery', 'b'] });
      const starting = worker.start();
      await waitFor(() => declaring, "'b' being declared");
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      // Once stop() resolved the app may close the transport: nothing may reach it after.
      const consumed = consume.mock.calls.map(([queue]) => queue);
      await starting;
      await sleep(100);
      expect(consumed).toEqual(['celery']);
      expect(consume.mock.calls.map(([queue]) => queue)).toEqual(['celery']);
    });

    it('sends no worker-online and answers nothing when stopped while its remote control starts', async () => {
      const subscribe = transport.subscribeBroadcast.bind(transport);
      let subscribing = false;
      jest.spyOn(transport, 'subscribeBroadcast').mockImplementation(async (exchange, handler) => {
        subscribing = true;
        await sleep(50); // the broker is slow
        return subscribe(exchange, handler);
      });
      const events: string[] = [];
      const receiver = new EventReceiver(new MemoryTransport({ broker: transport.broker }), {
        wakeup: false,
      });
      receiver.on('*', (e) => events.push(e.type));
      await receiver.start();
      const worker = app.worker({ handleSignals: false, heartbeatIntervalMs: 20 });
      const starting = worker.start();
      await waitFor(() => subscribing, 'remote control starting');
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
      await starting;
      await sleep(100);
      expect(events.filter((e) => e === 'worker-online' || e === 'worker-heartbeat')).toEqual([]);
      expect(await app.control.ping({ timeoutMs: 200 })).toEqual([]);
      await receiver.stop();
    });

    it('keeps no consumer for a queue added, cancelled and added again while the first was starting', async () => {
      const worker = await startWorker();
      // The first is the slowest to start.
      const asked = slowConsumers((_, nth) => sleep(nth === 1 ? 80 : 20));
      await app.control.addConsumer('extra');
      await waitFor(() => asked.length === 1, 'the first consumer starting');
      await app.control.cancelConsumer('extra', { reply: true, limit: 1 });
      await app.control.addConsumer('extra', { reply: true, limit: 1 });
      await waitFor(() => asked.length === 2, 'the second consumer starting');
      await sleep(120);
      expect(worker.queues).toEqual(['celery', 'extra']);
      expect(consumersOf('extra')).toBe(1);
      await worker.stop();
      // One left behind would take each message and the stopped worker give it back, endlessly.
      expect(consumersOf('extra')).toBe(0);
    });

    it('keeps the consumer of a queue added again when the consume it replaced fails', async () => {
      const worker = await startWorker();
      const asked = slowConsumers(async (_, nth) => {
        if (nth > 1) return sleep(20);
        await sleep(80);
        throw new Error('consume timed out'); // the first attempt fails, late
      });
      await app.control.addConsumer('extra');
      await waitFor(() => asked.length === 1, 'the first consumer starting');
      await app.control.cancelConsumer('extra', { reply: true, limit: 1 });
      await app.control.addConsumer('extra', { reply: true, limit: 1 });
      await sleep(150);
      expect(worker.queues).toEqual(['celery', 'extra']);
      expect(consumersOf('extra')).toBe(1);
      await worker.stop();
      expect(consumersOf('extra')).toBe(0);
    });

    it('keeps one consumer of a queue cancelled and added again while the start had not reached it', async () => {
      // The start waits at 'b' while the operator changes 'c'.
      const asked = slowConsumers(async (queue) => {
        if (queue === 'b') await sleep(80);
      });
      const worker = app.worker({ handleSignals: false, queues: ['celery', 'b', 'c'] });
      started.push(worker);
      const starting = worker.start();
      await waitFor(() => asked.includes('b'), "'b' starting");
      await app.control.cancelConsumer('c', { reply: true, limit: 1 });
      await app.control.addConsumer('c', { reply: true, limit: 1 });
      await starting;
      await sleep(50);
      expect(worker.queues).toEqual(['celery', 'b', 'c']);
      expect(consumersOf('c')).toBe(1);
      await worker.stop();
      expect(['celery', 'b', 'c'].map(consumersOf)).toEqual([0, 0, 0]);
    });

    it('starts although the consume of a queue cancelled meanwhile fails', async () => {
      const asked = slowConsumers(async (queue) => {
        if (queue !== 'b') return;
        await sleep(80);
        throw new Error('consume timed out');
      });
      const worker = app.worker({ handleSignals: false, queues: ['celery', 'b'] });
      started.push(worker);
      const starting = worker.start();
      await waitFor(() => asked.includes('b'), "'b' starting");
      await app.control.cancelConsumer('b', { reply: true, limit: 1 });
      await expect(starting).resolves.toBeUndefined();
      expect(worker.running).toBe(true);
      expect(worker.queues).toEqual(['celery']);
      await expect(
        (await app.client(Shop).add.delay(2, 2)).get({ timeoutMs: 5_000 }),
      ).resolves.toBe(4);
    });

    it('forgets a queue cancelled while its consumer was still starting (add_consumer, then cancel_consumer)', async () => {
      const worker = await startWorker();
      const asked = slowConsumers(() => sleep(50));
      await app.control.addConsumer('extra');
      await waitFor(() => asked.length === 1, 'the consumer starting');
      await app.control.cancelConsumer('extra', { reply: true, limit: 1 });
      await sleep(100);
      expect(worker.queues).toEqual(['celery']);
      expect(consumersOf('extra')).toBe(0);
    });

    it('is done by app.close() for a worker still running, which then sends no more heartbeats', async () => {
      const worker = await startWorker({ heartbeatIntervalMs: 20 });
      const result = await app.client(Shop).slow.delay(100);
      await waitFor(() => worker.activeCount === 1, 'running');
      await expect(app.close()).resolves.toEqual({ unclosed: [] });
      // The running task finished before the connections closed: a graceful stop.
      await expect(result.state()).resolves.toBe('SUCCESS');
      // Sent or dropped, a heartbeat after the close would be counted.
      const events = () => worker.eventCounts.sent + worker.eventCounts.dropped;
      const before = events();
      expect(before).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(events()).toBe(before);
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_GRACEFUL);
    });

    it('lets a second app.close() wait for the workers the first is stopping', async () => {
      const worker = await startWorker();
      await app.client(Shop).slow.delay(100);
      await waitFor(() => worker.activeCount === 1, 'running');
      const first = app.close();
      const activeWhenSecondEnded = await app.close().then(() => worker.activeCount);
      expect(activeWhenSecondEnded).toBe(0);
      await first;
    });

    it('reports no stop for a worker that never started (its backend unreachable), and app.close() still ends', async () => {
      class Unreachable extends MemoryResultBackend {
        override async connect(): Promise<void> {
          throw new ConnectionError('memory: unreachable on purpose');
        }
      }
      const down = new Conveyor({
        broker: new MemoryTransport(),
        backend: new Unreachable(),
        tasks: [Shop],
      });
      const worker = down.worker({ handleSignals: false });
      const stops = recordStop(worker);
      await expect(worker.start()).rejects.toBeInstanceOf(ConnectionError);
      await expect(down.close()).resolves.toEqual({ unclosed: [] });
      expect(stops).toEqual([]);
    });

    it('still hears a revoke while it waits for running tasks: terminating the one it waits for ends the stop', async () => {
      const worker = await startWorker({ shutdownTimeoutMs: 30_000 });
      const result = await app.client(Shop).cancellable.delay();
      await waitFor(() => worker.activeCount === 1, 'running');
      const stopping = worker.stop();
      await app.revoke(result.id, { terminate: true });
      await expect(stopping).resolves.toBe(defaults.EXIT_GRACEFUL);
      await expect(result.state()).resolves.toBe('REVOKED');
      expect(queued(transport, 'celery')).toHaveLength(0);
    });

    it('sends no heartbeat once offline, even when asked while it waits for running tasks', async () => {
      // No periodic heartbeat during the test: only worker-offline and what is asked for.
      const worker = await startWorker({ shutdownTimeoutMs: 30_000, heartbeatIntervalMs: 60_000 });
      const result = await app.client(Shop).cancellable.delay();
      await waitFor(() => worker.activeCount === 1, 'running');
      const events = () => worker.eventCounts.sent + worker.eventCounts.dropped;
      const before = events();
      const stopping = worker.stop();
      // worker-offline goes out as the stop begins; remote control still answers.
      await waitFor(() => events() === before + 1, 'worker-offline');
      const offline = events();
      await app.control.heartbeat({ timeoutMs: 100 });
      // The mailbox is read in order: the ping's answer comes after the heartbeat was handled.
      const pongs = await app.control.ping({ timeoutMs: 1_000 });
      expect(pongs.map((reply) => Object.keys(reply))).toEqual([[worker.hostname]]);
      expect(events()).toBe(offline);
      await app.revoke(result.id, { terminate: true });
      await expect(stopping).resolves.toBe(defaults.EXIT_GRACEFUL);
    });

    it('aborts tasks that outlive the shutdown timeout and requeues them', async () => {
      const worker = await startWorker({ shutdownTimeoutMs: 100 });
      const stops = recordStop(worker);
      const result = await app.client(Shop).cancellable.delay();
      await waitFor(() => worker.activeCount === 1, 'running');
      await expect(worker.stop()).resolves.toBe(defaults.EXIT_SHUTDOWN_TIMEOUT);
      expect(stops).toEqual([
        ['worker-stopping', { running: 1, timeoutMs: 100, forced: false }],
        [
          'worker-stopped',
          { exitCode: defaults.EXIT_SHUTDOWN_TIMEOUT, aborted: 1, requeued: 1, unstarted: 0 },
        ],
      ]);
      await expect(result.state()).resolves.toBe('PENDING');
      const back = queued(transport, 'celery');
      expect(back.map((m) => m.headers.id)).toEqual([result.id]);
    });
  });
});
