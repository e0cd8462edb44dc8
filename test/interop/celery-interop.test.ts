import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Task,
  TaskFailedError,
  TaskService,
  taskContext,
  type ResultMeta,
  type TaskState,
  type TransportMessage,
} from '@conveyor/core';
import { sleep, waitFor } from '@conveyor/core/testing';
import { removeQueues } from '../support/rabbitmq';
import { deleteRedisKeys } from '../support/redis';
import { celeryWireReference, type CeleryWireReference } from '../support/celery-reference';
import { useCeleryInterop } from './interop-scope';
import { captureCeleryReference, pythonCanvas, pythonSend } from './python-celery';

class InventoryError extends Error {
  override name = 'InventoryError';
}

@Task({ name: 'math.add' })
class Add {
  run(a: number, b: number): number {
    return a + b;
  }
}

@TaskService({ name: 'shop' })
class Shop {
  @Task()
  describe(
    name: string,
    count = 1,
    tags: string[] = [],
  ): { name: string; count: number; tags: string[] } {
    return { name, count, tags };
  }

  @Task()
  reserve(sku: string): never {
    throw new InventoryError(`out of stock: ${sku}`);
  }

  @Task()
  clock(): { at: number; eta: string | null } {
    return { at: Date.now() / 1000, eta: taskContext().headers.eta };
  }
}

const captureQueue = `interop-capture-${randomUUID()}`;

describe('Celery interoperability (real Python Celery 5 on RabbitMQ and Redis)', () => {
  const { app, pyQueue, tsQueue, taskIds, track } = useCeleryInterop('interop', {
    tasks: [Add, Shop],
    extraQueues: [captureQueue],
  });

  describe('Conveyor producer → Python Celery worker', () => {
    it('runs tasks.add(4, 5) and get() returns 9', async () => {
      const result = track(await app.send<number>('tasks.add', [4, 5], { queue: pyQueue }));
      await expect(result.get({ timeoutMs: 15_000 })).resolves.toBe(9);
    });

    it('passes keyword arguments', async () => {
      const result = track(
        await app.send('tasks.describe', ['ada'], {
          queue: pyQueue,
          kwargs: { count: 3, tags: ['x', 'y'] },
        }),
      );
      await expect(result.get({ timeoutMs: 15_000 })).resolves.toEqual({
        name: 'ada',
        count: 3,
        tags: ['x', 'y'],
        ok: true,
      });
    });

    it.each([
      ['countdown', (now: number) => ({ countdownMs: 1_500, due: now + 1_500 })],
      ['eta', (now: number) => ({ eta: new Date(now + 1_500), due: now + 1_500 })],
    ])('honours a %s', async (_label, make) => {
      const sentAt = Date.now();
      const { due, ...options } = make(sentAt);
      const result = track(
        await app.send<number>('tasks.clock', [], { queue: pyQueue, ...options }),
      );
      const ranAt = (await result.get({ timeoutMs: 20_000 })) * 1000;
      expect(ranAt).toBeGreaterThanOrEqual(due - 50);
      expect(ranAt).toBeLessThan(due + 5_000);
    });

    it('turns a Python exception into TaskFailedError with exc_type ValueError and the Python traceback', async () => {
      const result = track(await app.send('tasks.fail', ['boom'], { queue: pyQueue }));
      const error = (await result
        .get({ timeoutMs: 15_000 })
        .catch((e: unknown) => e)) as TaskFailedError;
      expect(error).toBeInstanceOf(TaskFailedError);
      expect(error.excType).toBe('ValueError');
      expect(error.excMessage).toEqual(['boom']);
      expect(error.excModule).toBe('builtins');
      expect(error.remoteTraceback).toMatch(
        /Traceback \(most recent call last\)[\s\S]*raise ValueError\(msg\)/,
      );
    });

    it('shows a Python retry as RETRY, then SUCCESS', async () => {
      const result = track(await app.send('tasks.flaky', [2], { queue: pyQueue }));
      const seen = new Set<TaskState>();
      const done = result.get({ timeoutMs: 20_000 });
      while (!(await result.ready())) {
        seen.add(await result.state());
        await sleep(20);
      }
      await expect(done).resolves.toEqual({ retries: 2 });
      expect(seen.has('RETRY')).toBe(true);
      await expect(result.state()).resolves.toBe('SUCCESS');
    });
  });

  describe('Python Celery producer → Conveyor worker', () => {
    it("runs send_task('math.add', args=(4, 5)) and Python's get() returns 9", async () => {
      const out = await pythonSend({ task: 'math.add', queue: tsQueue, args: [4, 5] });
      taskIds.push(out.id);
      expect(out).toMatchObject({ ok: true, result: 9, state: 'SUCCESS' });
    });

    it('maps keyword arguments onto parameters by name', async () => {
      const out = await pythonSend({
        task: 'shop.describe',
        queue: tsQueue,
        args: ['ada'],
        kwargs: { tags: ['t'] },
      });
      taskIds.push(out.id);
      expect(out.result).toEqual({ name: 'ada', count: 1, tags: ['t'] });
    });

    it('gives Python an exception whose type and message it can read', async () => {
      const out = await pythonSend({ task: 'shop.reserve', queue: tsQueue, args: ['sku-9'] });
      taskIds.push(out.id);
      expect(out).toMatchObject({
        ok: false,
        state: 'FAILURE',
        exc_type: 'InventoryError',
        exc_message: 'out of stock: sku-9',
      });
    });

    it('gives Python a task dead-lettered past maxDeliveries as billiard WorkerLostError', async () => {
      // A message as a quorum queue delivers it after 10 returned deliveries: the worker's default
      // cap. Sent to a queue nobody consumes, then moved to the worker's with that count.
      const holding = `${tsQueue}-holding`;
      await app.transport.declareQueue({ name: holding });
      try {
        const sent = track(await app.send('math.add', [1, 2], { queue: holding }));
        const held = (await app.transport.fetch!(holding))!;
        await app.transport.publishToQueue!(tsQueue, {
          ...held.message,
          headers: { ...held.message.headers, 'x-delivery-count': 10 },
        });
        await held.ack();
        const out = await pythonSend({ read: sent.id, queue: tsQueue, timeout: 15 });
        expect(out).toMatchObject({
          ok: false,
          state: 'FAILURE',
          exc_type: 'WorkerLostError',
          exc_module: 'billiard.exceptions',
          exc_message: 'delivered 10 times without completing',
        });
      } finally {
        await removeQueues([holding]);
      }
    });

    it('honours an eta set in Python through the broker', async () => {
      const sentAt = Date.now();
      const out = await pythonSend({
        task: 'shop.clock',
        queue: tsQueue,
        eta_in: 1.5,
        timeout: 20,
      });
      taskIds.push(out.id);
      const { at, eta } = out.result as { at: number; eta: string };
      expect(at * 1000).toBeGreaterThanOrEqual(sentAt + 1_500 - 50);
      expect(Date.parse(eta)).toBeGreaterThan(sentAt);
    });
  });

  describe('workflows built in Python across both workers', () => {
    const queues = { ts_queue: tsQueue, py_queue: pyQueue };

    it('runs a chain whose steps alternate between Conveyor and Celery workers', async () => {
      const out = await pythonCanvas({ kind: 'chain', ...queues });
      taskIds.push(...(out.ids as string[]));
      // math.add(1, 2) on Conveyor, tasks.add(3, 10) on Celery, math.add(13, 100) on Conveyor.
      expect(out.result).toBe(113);
      const metas = await Promise.all((out.ids as string[]).map((id) => app.backend!.get(id)));
      expect(metas.map((m) => [m?.status, m?.result])).toEqual([
        ['SUCCESS', 3],
        ['SUCCESS', 13],
        ['SUCCESS', 113],
      ]);
      // Each step's meta names its parent, whichever side stored it (Celery always does).
      const ids = out.ids as string[];
      expect(metas.map((m) => m?.parent_id)).toEqual([undefined, ids[0], ids[1]]);
    });

    it("marks every later step of a chain FAILURE when a step fails on Conveyor: Python's get() on the last step raises", async () => {
      const out = await pythonCanvas({ kind: 'chain_fail', ...queues, timeout: 15 });
      taskIds.push(...(out.ids as string[]));
      // A fresh AsyncResult(last_id).get() used to time out: the later steps stayed PENDING.
      expect(out.raised).toEqual({ type: 'InventoryError', message: 'out of stock: sku-7' });
      expect(out.states).toEqual(['FAILURE', 'FAILURE', 'FAILURE']);
      const last = await app
        .result((out.ids as string[])[2]!)
        .get({ timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(last).toMatchObject({
        excType: 'InventoryError',
        excMessage: ['out of stock: sku-7'],
      });
    });

    it('sends a link (callback) of a task run by Conveyor to Celery with the result', async () => {
      const out = await pythonCanvas({ kind: 'link', ...queues });
      taskIds.push(out.id as string, out.link_id as string);
      expect(out).toMatchObject({ result: 5, callback: 6 });
    });

    it('sends a link_error (errback) of a task failed on Conveyor with the failed task id', async () => {
      const out = await pythonCanvas({ kind: 'link_error', ...queues });
      taskIds.push(out.id as string, out.link_id as string);
      expect(out).toMatchObject({
        state: 'FAILURE',
        errback: { name: out.id, count: 1, tags: [] },
      });
    });
  });

  describe('stored groups (celery-taskset-meta-<id>)', () => {
    it('stores a group that Python restores, and reads one Python saved', async () => {
      const members = [randomUUID(), randomUUID()];
      const [ours, theirs] = [randomUUID(), randomUUID()];
      try {
        await app.backend!.storeGroup({
          group_id: ours,
          result: members.map((id) => [[id, null], null]),
        });
        await expect(pythonCanvas({ kind: 'group_restore', group_id: ours })).resolves.toEqual({
          id: ours,
          members,
        });
        await pythonCanvas({ kind: 'group_save', group_id: theirs, members });
        await expect(app.backend!.getGroup(theirs)).resolves.toMatchObject({
          group_id: theirs,
          result: members.map((id) => [[id, null], null]),
        });
      } finally {
        for (const id of [ours, theirs]) await deleteRedisKeys(`celery-taskset-meta-${id}`);
      }
    });
  });

  describe('message headers, field by field', () => {
    const capture = async (): Promise<TransportMessage[]> => {
      const got: TransportMessage[] = [];
      const consumer = await app.transport.consume(
        captureQueue,
        (d) => {
          got.push(d.message);
          void d.ack();
        },
        { prefetch: 10 },
      );
      await waitFor(() => got.length === 2, 'both captured messages', 15_000);
      await consumer.cancel();
      return got;
    };

    it('fills every header and property that Celery fills, with the same meaning', async () => {
      await app.transport.declareQueue({ name: captureQueue });
      const py = await pythonSend({
        task: 'tasks.add',
        queue: captureQueue,
        args: [2, 3],
        wait: false,
      });
      const ours = await app.send('tasks.add', [2, 3], { queue: captureQueue });
      const [first, second] = await capture();
      const python = [first!, second!].find((m) => m.headers.id === py.id)!;
      const conveyor = [first!, second!].find((m) => m.headers.id === ours.id)!;

      expect(Object.keys(conveyor.headers).sort()).toEqual(Object.keys(python.headers).sort());
      const same = [
        'task',
        'shadow',
        'eta',
        'expires',
        'group',
        'group_index',
        'retries',
        'timelimit',
        'parent_id',
        'argsrepr',
        'kwargsrepr',
        'ignore_result',
      ];
      for (const key of same)
        expect([key, conveyor.headers[key]]).toEqual([key, python.headers[key]]);
      // Differences by nature: each message names its own id and producer.
      expect(conveyor.headers.root_id).toBe(conveyor.headers.id);
      expect(python.headers.root_id).toBe(python.headers.id);
      expect([python.headers.lang, conveyor.headers.lang]).toEqual(['py', 'js']);
      expect(conveyor.headers.origin).toMatch(/^gen\d+@/);
      expect(python.headers.origin).toMatch(/^gen\d+@/);

      const props = (m: TransportMessage) => ({
        contentType: m.properties.contentType,
        contentEncoding: m.properties.contentEncoding,
        deliveryMode: m.properties.deliveryMode,
        priority: m.properties.priority ?? 0,
        correlationIsId: m.properties.correlationId === m.headers.id,
        hasReplyTo: typeof m.properties.replyTo === 'string',
      });
      expect(props(conveyor)).toEqual(props(python));
      expect(JSON.parse(conveyor.body.toString())).toEqual(JSON.parse(python.body.toString()));
    });
  });

  describe('the committed Celery capture (test/fixtures)', () => {
    it('is what this Python Celery puts on the wire and stores today', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'celery-capture-'));
      try {
        await captureCeleryReference(join(dir, 'capture.json'));
        const fresh = JSON.parse(
          readFileSync(join(dir, 'capture.json'), 'utf8'),
        ) as CeleryWireReference;
        const committed = celeryWireReference();
        // Ids, the producer's name and times differ by nature; everything else must not.
        const message = (m: CeleryWireReference['message']) => ({
          headers: { ...m.headers, id: 'id', root_id: 'id', origin: 'origin' },
          properties: { ...m.properties, correlationId: 'id', replyTo: 'reply' },
          body: m.body,
        });
        const meta = ({ task_id: _id, date_done: _done, traceback, ...rest }: ResultMeta) => ({
          ...rest,
          traceback: traceback === null ? null : 'a traceback',
        });
        expect(message(fresh.message)).toEqual(message(committed.message));
        expect(meta(fresh.success_meta)).toEqual(meta(committed.success_meta));
        expect(meta(fresh.failure_meta)).toEqual(meta(committed.failure_meta));
        expect(fresh.unknown_task_meta_result).toEqual(committed.unknown_task_meta_result);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 90_000);
  });
});
