import {
  Conveyor,
  EventReceiver,
  Task,
  TaskService,
  type CeleryEvent,
  type TaskEvent,
  type Worker,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { RATE_SLOT_HEADER } from '../../src/transport/transport';
import { sharedBroker } from './fixtures';

@TaskService({ name: 'received' })
class Limited {
  // 10/s: one slot every 100 ms, so most of a burst waits its slot in the broker.
  @Task({ rateLimit: '10/s' })
  add(a: number, b: number): number {
    return a + b;
  }
}

describe('task-received', () => {
  let app: Conveyor | undefined;
  let worker: Worker | undefined;
  let receiver: EventReceiver | undefined;

  afterEach(async () => {
    await receiver?.stop();
    await worker?.stop();
    await app?.close();
    app = worker = receiver = undefined;
  });

  it('is reported once per task when rate-limited tasks wait their slot in the broker', async () => {
    const { connect } = sharedBroker();
    const transport = connect();
    const sentBack: string[] = [];
    // Messages that come back carrying their slot were sent to wait in the broker.
    const consume = transport.consume.bind(transport);
    jest.spyOn(transport, 'consume').mockImplementation((queue, handler, options) =>
      consume(
        queue,
        (delivery) => {
          const h = delivery.message.headers;
          if (typeof h[RATE_SLOT_HEADER] === 'number') sentBack.push(String(h.id));
          handler(delivery);
        },
        options,
      ),
    );
    app = new Conveyor({ broker: transport, tasks: [Limited] });
    worker = app.worker({ handleSignals: false, taskEvents: true });
    const received: TaskEvent[] = [];
    worker.on('task-received', (e) => received.push(e));
    const celery: CeleryEvent[] = [];
    receiver = new EventReceiver(connect(), { wakeup: false, routingKey: 'task.#' });
    receiver.on('task-received', (e) => celery.push(e));
    await receiver.start();
    await worker.start();

    const client = app.client(Limited);
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => client.add.delay(i, i)));
    for (const result of results) await result.get({ timeoutMs: 10_000 });
    await worker.stop();
    const ids = results.map((r) => r.id).sort();
    await waitFor(() => celery.length >= ids.length, 'the Celery task-received events', 5_000);

    expect(new Set(sentBack).size).toBeGreaterThan(0);
    expect(received.map((e) => e.id).sort()).toEqual(ids);
    expect(received.every((e) => e.redelivered === false)).toBe(true);
    expect(celery.map((e) => e.uuid).sort()).toEqual(ids);
  });

  it('is not sent as a Celery event for a task ended as it arrives (expired or revoked): Celery sends task-revoked alone', async () => {
    const { connect } = sharedBroker();
    app = new Conveyor({ broker: connect(), tasks: [Limited] });
    worker = app.worker({ handleSignals: false, taskEvents: true });
    const received: string[] = [];
    worker.on('task-received', (e) => received.push(e.id));
    const revokedHere: string[] = [];
    worker.on('task-revoked', (e) => revokedHere.push(`${e.id} ${e.reason!}`));
    const celery: CeleryEvent[] = [];
    receiver = new EventReceiver(connect(), { wakeup: false, routingKey: 'task.#' });
    receiver.on('*', (e) => celery.push(e));
    await receiver.start();
    await worker.start();

    const client = app.client(Limited);
    const expired = await client.add.applyAsync([1, 1], { expires: new Date(Date.now() - 1_000) });
    const revokedId = 'revoked-before-it-came';
    // Answered once the worker has it in its revoked set.
    const replies = await app.control.revoke(revokedId, {
      reply: true,
      limit: 1,
      timeoutMs: 5_000,
    });
    expect(replies).toHaveLength(1);
    const revoked = await client.add.applyAsync([2, 2], { taskId: revokedId });
    const ran = await client.add.delay(3, 3);
    await expect(ran.get({ timeoutMs: 5_000 })).resolves.toBe(6);
    await Promise.all([expired, revoked].map((r) => r.get({ timeoutMs: 5_000 }).catch(() => 0)));
    await worker.stop();
    await waitFor(
      () => celery.some((e) => e.type === 'task-succeeded' && e.uuid === ran.id),
      'the events',
      5_000,
    );

    const typesOf = (id: string): string[] =>
      celery.filter((e) => e.uuid === id).map((e) => e.type);
    expect(typesOf(expired.id)).toEqual(['task-revoked']);
    expect(typesOf(revokedId)).toEqual(['task-revoked']);
    expect(typesOf(ran.id)).toEqual(['task-received', 'task-started', 'task-succeeded']);
    // The worker's own events (and its log) still say received, as Celery's log does.
    expect(received).toEqual([expired.id, revokedId, ran.id]);
    expect(revokedHere).toEqual([`${expired.id} expired`, `${revokedId} revoked`]);
  });
});
