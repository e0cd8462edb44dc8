import {
  Conveyor,
  DEAD_LETTER_REASON_HEADER,
  DELIVERY_COUNT_HEADER,
  DeadLetters,
  MemoryTransport,
  Task,
  TaskService,
  WorkerLostError,
  taskContext,
  type AsyncResult,
  type PublishOptions,
  type TransportMessage,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { deadLetters, queued } from './fixtures';

const seen: Array<{ id: string; redelivered: boolean }> = [];

@TaskService({ name: 'cap', queue: 'cap' })
class Capped {
  @Task()
  note(): string {
    seen.push({ id: taskContext().id, redelivered: taskContext().redelivered });
    return 'ran';
  }

  @Task({ maxDeliveries: 2 })
  strict(): string {
    seen.push({ id: taskContext().id, redelivered: taskContext().redelivered });
    return 'ran';
  }

  @Task({ retry: { max: 1, backoff: 'fixed', delayMs: 1 } })
  flaky(): string {
    seen.push({ id: taskContext().id, redelivered: taskContext().redelivered });
    if (taskContext().retries === 0) throw new Error('first run fails');
    return 'ran';
  }
}

describe('Worker: the redelivery cap (maxDeliveries)', () => {
  let transport: MemoryTransport;
  let app: Conveyor;
  const stops: Array<() => Promise<unknown>> = [];

  /** Sends a task with no worker running, then puts it back as the broker would redeliver it. */
  const redelivered = async (
    method: 'note' | 'strict' | 'flaky',
    headers: Record<string, unknown>,
    flagged = true,
  ): Promise<AsyncResult<string>> => {
    const result = await app.client(Capped)[method].delay();
    const queue = transport.broker.queue('cap')!;
    const stored = queue.take()!;
    Object.assign(stored.message.headers, headers);
    queue.enqueue({ message: stored.message, redelivered: flagged });
    return result;
  };
  const startWorker = async (maxDeliveries?: number) => {
    const worker = app.worker({ handleSignals: false, maxDeliveries });
    await worker.start();
    stops.push(() => worker.stop());
  };

  beforeEach(() => {
    seen.length = 0;
    transport = new MemoryTransport();
    app = new Conveyor({ broker: transport, tasks: [Capped] });
  });
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
    await app.close();
  });

  it('replaces a redelivered message with a copy carrying its count, which runs as redelivered', async () => {
    const result = await redelivered('note', {});
    await startWorker();
    await expect(result.get({ timeoutMs: 2_000 })).resolves.toBe('ran');
    expect(seen).toEqual([{ id: result.id, redelivered: true }]);
    expect(deadLetters(transport, 'cap')).toHaveLength(0);
    expect(queued(transport, 'cap')).toHaveLength(0);
  });

  it('past maxDeliveries, dead-letters it unrun with the reason and stores WorkerLostError', async () => {
    const result = await redelivered('note', { [DELIVERY_COUNT_HEADER]: 2 });
    await startWorker(3);
    const error = await result.get({ timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkerLostError);
    expect(error).toMatchObject({
      excType: 'WorkerLostError',
      excModule: 'billiard.exceptions',
      excMessage: ['delivered 3 times without completing'],
      code: 'CONVEYOR_ERR_WORKER_LOST',
    });
    expect(seen).toEqual([]);
    const [dead] = deadLetters(transport, 'cap');
    expect(dead!.headers[DEAD_LETTER_REASON_HEADER]).toBe('delivered 3 times without completing');
    const { items } = await new DeadLetters({ transport }).list('cap');
    expect(items[0]).toMatchObject({ id: result.id, redeliveries: 3, deadLetteredBy: 'worker' });
  });

  it("a task's own maxDeliveries wins over the worker's", async () => {
    const result = await redelivered('strict', { [DELIVERY_COUNT_HEADER]: 1 });
    await startWorker(10);
    await expect(result.get({ timeoutMs: 2_000 })).rejects.toBeInstanceOf(WorkerLostError);
    expect(seen).toEqual([]);
  });

  it("counts by the broker's x-delivery-count where there is one (quorum queues), without copies", async () => {
    const under = await redelivered('note', { 'x-delivery-count': 9 });
    await startWorker();
    await expect(under.get({ timeoutMs: 2_000 })).resolves.toBe('ran');
    const over = await redelivered('note', { 'x-delivery-count': 10 });
    await expect(over.get({ timeoutMs: 2_000 })).rejects.toBeInstanceOf(WorkerLostError);
    await waitFor(() => deadLetters(transport, 'cap').length === 1, 'the dead letter');
    expect(seen.map((s) => s.id)).toEqual([under.id]);
  });

  it("on a quorum queue, adds the count a copy carries to the broker's (an unstarted give-back)", async () => {
    const result = await redelivered('note', { 'x-delivery-count': 1, [DELIVERY_COUNT_HEADER]: 9 });
    await startWorker();
    await expect(result.get({ timeoutMs: 2_000 })).rejects.toBeInstanceOf(WorkerLostError);
    expect(seen).toEqual([]);
  });

  it('keeps the count of a message it sends back to wait for its eta, in its own header (the broker starts a copy from zero)', async () => {
    class DelayRecording extends MemoryTransport {
      readonly delayed: TransportMessage[] = [];
      override async publish(message: TransportMessage, options: PublishOptions): Promise<void> {
        if (options.deliverAt !== undefined) this.delayed.push(message);
        await super.publish(message, options);
      }
    }
    await app.close();
    const recording = new DelayRecording();
    transport = recording;
    app = new Conveyor({ broker: recording, tasks: [Capped] });
    const eta = new Date(Date.now() + 300).toISOString();
    const result = await redelivered('note', { 'x-delivery-count': 3, eta }, false);
    await startWorker();
    await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe('ran');
    expect(recording.delayed).toHaveLength(1);
    expect(recording.delayed[0]!.headers['x-delivery-count']).toBeUndefined();
    expect(recording.delayed[0]!.headers[DELIVERY_COUNT_HEADER]).toBe(3);
  });

  it('runs a first delivery whatever count a copy carries (the count moves only on a redelivery)', async () => {
    const result = await redelivered('note', { [DELIVERY_COUNT_HEADER]: 9 }, false);
    await startWorker();
    await expect(result.get({ timeoutMs: 2_000 })).resolves.toBe('ran');
  });

  it.each([
    ['a copy recounted on a classic queue', { [DELIVERY_COUNT_HEADER]: 9 }, false],
    ["the broker's count on a quorum queue", { 'x-delivery-count': 9 }, true],
  ])(
    'a retry is a new message: it carries no delivery count from %s',
    async (_, headers, flagged) => {
      const published: Array<Record<string, unknown>> = [];
      const publish = transport.publish.bind(transport);
      jest.spyOn(transport, 'publish').mockImplementation((message, options) => {
        published.push(message.headers);
        return publish(message, options);
      });
      const result = await redelivered('flaky', headers, flagged);
      await startWorker();
      await expect(result.get({ timeoutMs: 2_000 })).resolves.toBe('ran');
      const retry = published.find((h) => h.retries === 1)!;
      expect(retry).toBeDefined();
      expect(retry[DELIVERY_COUNT_HEADER]).toBeUndefined();
      expect(retry['x-delivery-count']).toBeUndefined();
      expect(seen).toEqual([
        { id: result.id, redelivered: true },
        { id: result.id, redelivered: false },
      ]);
    },
  );

  it('refuses a maxDeliveries below 1', () => {
    expect(() => app.worker({ maxDeliveries: 0 })).toThrow(/maxDeliveries/);
  });
});
