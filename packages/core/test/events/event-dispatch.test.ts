import { randomUUID } from 'node:crypto';
import {
  ClusterState,
  ConfigError,
  EventDispatcher,
  EventReceiver,
  MemoryBroker,
  MemoryTransport,
  adjustTimestamp,
  celeryUtcOffset,
  type CeleryEvent,
  type Transport,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';

describe('Celery events on the memory transport', () => {
  it('delivers events with Celery fields to receivers bound by routing key', async () => {
    const broker = new MemoryBroker();
    const sender = new MemoryTransport({ broker });
    const listener = new MemoryTransport({ broker });
    const dispatcher = new EventDispatcher(sender, { hostname: 'w1@host' });
    await dispatcher.open();
    const all: CeleryEvent[] = [];
    const tasksOnly: CeleryEvent[] = [];
    const everything = new EventReceiver(listener, { wakeup: false });
    everything.on('*', (e) => all.push(e));
    const taskReceiver = new EventReceiver(listener, { wakeup: false, routingKey: 'task.#' });
    taskReceiver.on('*', (e) => tasksOnly.push(e));
    await everything.start();
    await taskReceiver.start();

    const before = Date.now() / 1000;
    expect(dispatcher.send('worker-online', { freq: 2 })).toBe(true);
    expect(dispatcher.send('task-succeeded', { uuid: 'abc', result: '4', runtime: 0.1 })).toBe(
      true,
    );
    await waitFor(() => all.length === 2 && tasksOnly.length === 1, 'events');

    expect(all[0]).toMatchObject({
      type: 'worker-online',
      hostname: 'w1@host',
      pid: process.pid,
      utcoffset: celeryUtcOffset(),
      freq: 2,
    });
    expect(all[0]!.timestamp).toBeGreaterThanOrEqual(before);
    expect(all[1]!.clock).toBeGreaterThan(all[0]!.clock);
    expect(all[1]!.local_received).toBeGreaterThanOrEqual(before);
    expect(tasksOnly[0]).toMatchObject({ type: 'task-succeeded', uuid: 'abc', result: '4' });
    expect(dispatcher.stats).toEqual({ sent: 2, dropped: 0 });
    await everything.stop();
    await taskReceiver.stop();
  });

  it('drops and counts events it cannot send, and never throws', async () => {
    const transport = new MemoryTransport();
    const dispatcher = new EventDispatcher(transport, { hostname: 'w1@host' });
    expect(dispatcher.send('worker-heartbeat')).toBe(false); // not opened yet
    await dispatcher.open();
    await transport.close();
    dispatcher.send('worker-heartbeat'); // connection closed: the transport refuses it
    expect(dispatcher.send('task-started', { uuid: 'x', bad: BigInt(1) })).toBe(false);
    await waitFor(() => dispatcher.stats.dropped === 3, 'three drops counted');
    expect(dispatcher.stats).toEqual({ sent: 0, dropped: 3 });
  });

  it('sends the events of buffered groups as one list per batch, as Celery workers send task events', async () => {
    const broker = new MemoryBroker();
    const dispatcher = new EventDispatcher(new MemoryTransport({ broker }), {
      hostname: 'w',
      bufferGroups: ['task'],
      bufferLimit: 3,
      bufferMs: 60_000,
    });
    await dispatcher.open();
    const messages: string[] = [];
    const listener = new MemoryTransport({ broker });
    await listener.subscribeExchange('celeryev', '#', (m) => messages.push(m.body.toString()));
    const events: CeleryEvent[] = [];
    const receiver = new EventReceiver(listener, { wakeup: false });
    receiver.on('*', (e) => events.push(e));
    await receiver.start();
    dispatcher.send('task-received', { uuid: 'a' });
    dispatcher.send('worker-heartbeat', { freq: 2 });
    dispatcher.send('task-started', { uuid: 'a' });
    dispatcher.send('task-succeeded', { uuid: 'a' }); // the third: the batch goes
    dispatcher.send('task-received', { uuid: 'b' });
    dispatcher.flush();
    await waitFor(() => events.length === 5, 'five events');
    expect(messages.map((m) => (m.startsWith('[') ? JSON.parse(m).length : 'one'))).toEqual([
      'one',
      3,
      1,
    ]);
    expect(events.map((e) => `${e.type} ${String(e.uuid ?? '')}`)).toEqual([
      'worker-heartbeat ',
      'task-received a',
      'task-started a',
      'task-succeeded a',
      'task-received b',
    ]);
    expect(dispatcher.stats).toEqual({ sent: 5, dropped: 0 });
    await receiver.stop();
  });

  it('writes a batched event as the same JSON text as an unbatched one, fields in the same order', async () => {
    const broker = new MemoryBroker();
    const options = { hostname: 'w"1', bufferMs: 60_000 };
    const batched = new EventDispatcher(new MemoryTransport({ broker }), {
      ...options,
      bufferGroups: ['task'],
    });
    const single = new EventDispatcher(new MemoryTransport({ broker }), options);
    await Promise.all([batched.open(), single.open()]);
    const bodies: string[] = [];
    const listener = new MemoryTransport({ broker });
    await listener.subscribeExchange('celeryev', 'task.#', (m) => bodies.push(m.body.toString()));
    const sends: [string, Record<string, unknown>][] = [
      ['task-received', { uuid: 'a', args: "('x',)", eta: null, expires: undefined, retries: 0 }],
      ['task-started', {}],
      ['task-succeeded', { uuid: 'a', result: '{"k": 1}', runtime: 0.0015 }],
      // A field named like a stamped one keeps the stamped one's place, as in an object spread.
      ['task-custom', { clock: 'mine', pid: 7, extra: [1, { b: 2 }] }],
    ];
    for (const [type, fields] of sends) {
      batched.send(type, fields);
      single.send(type, fields);
    }
    batched.flush();
    await waitFor(() => bodies.length === sends.length + 1, 'the batch and each single event');
    const list = bodies.find((b) => b.startsWith('['))!;
    const singles = bodies.filter((b) => !b.startsWith('['));
    // The clocks and timestamps differ between the two dispatchers; the text around them must not.
    const unstamped = (json: string): string =>
      json.replace(/"clock":\d+/g, '"clock":0').replace(/"timestamp":[\d.e+-]+/g, '"timestamp":0');
    expect(unstamped(list)).toBe(unstamped(`[${singles.join(',')}]`));
    expect(JSON.parse(list)).toHaveLength(sends.length);
  });

  it('sends only the groups enabled', async () => {
    const transport = new MemoryTransport();
    const dispatcher = new EventDispatcher(transport, { hostname: 'w', groups: ['worker'] });
    await dispatcher.open();
    expect(dispatcher.send('task-received', { uuid: randomUUID() })).toBe(false);
    dispatcher.groups!.add('task');
    expect(dispatcher.send('task-received', { uuid: randomUUID() })).toBe(true);
    await waitFor(() => dispatcher.stats.sent === 1, 'the event sent');
    expect(dispatcher.stats).toEqual({ sent: 1, dropped: 0 });
  });

  it('refuses a transport without the exchanges capability with a ConfigError naming it', async () => {
    const memory = new MemoryTransport();
    const limited: Transport = {
      connect: () => memory.connect(),
      declareQueue: (q) => memory.declareQueue(q),
      publish: (m, o) => memory.publish(m, o),
      consume: (q, h, o) => memory.consume(q, h, o),
      broadcast: (e, m) => memory.broadcast(e, m),
      subscribeBroadcast: (e, h) => memory.subscribeBroadcast(e, h),
      close: () => memory.close(),
    };
    const dispatcher = new EventDispatcher(limited, { hostname: 'w' });
    await expect(dispatcher.open()).rejects.toThrow(ConfigError);
    await expect(dispatcher.open()).rejects.toThrow(/capability 'exchanges'/);
  });

  it('feeds a ClusterState through a receiver', async () => {
    const broker = new MemoryBroker();
    const dispatcher = new EventDispatcher(new MemoryTransport({ broker }), { hostname: 'w9@h' });
    await dispatcher.open();
    const state = new ClusterState();
    const receiver = new EventReceiver(new MemoryTransport({ broker }), { wakeup: false });
    receiver.on('*', (e) => state.event(e));
    await receiver.start();
    dispatcher.send('worker-heartbeat', { freq: 2 });
    dispatcher.send('task-received', { uuid: 't', name: 'add' });
    await waitFor(() => state.tasks.has('t') && state.isAlive('w9@h'), 'state');
    expect(state.tasks.get('t')).toMatchObject({ state: 'RECEIVED', worker: 'w9@h' });
    await receiver.stop();
  });

  it('moves a timestamp from the sender offset to ours as Celery adjust_timestamp does', () => {
    const here = celeryUtcOffset();
    expect(adjustTimestamp(1_000, here)).toBe(1_000);
    // A sender two hours east of us has a Celery utcoffset 2 lower.
    expect(adjustTimestamp(1_000, here - 2)).toBe(1_000 + 7_200);
  });
});
