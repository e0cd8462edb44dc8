import {
  ConfigError,
  Control,
  LamportClock,
  MemoryBroker,
  MemoryTransport,
  type RevokeCommand,
} from '@conveyor/core';
import { sleep, waitFor } from '@conveyor/core/testing';
import type { ControlledWorker } from '../../src/control/control-commands';
import { PidboxNode } from '../../src/control/pidbox-node';

/** A worker double that records what the commands asked of it. */
function fakeWorker(hostname: string): ControlledWorker & { calls: string[]; concurrency: number } {
  const calls: string[] = [];
  const rates = new Map<string, string | null>([['math.add', null]]);
  const worker = {
    hostname,
    clock: new LamportClock(),
    calls,
    concurrency: 4,
    stats: () => ({ pid: process.pid, pool: { 'max-concurrency': worker.concurrency } }),
    activeRequests: () => [],
    reservedRequests: () => [],
    scheduledRequests: () => [],
    registeredTasks: () => [
      { name: 'math.add', queue: 'celery', rateLimit: rates.get('math.add') ?? undefined },
    ],
    revokedIds: () => new Map([['r1', 1_000.5]]),
    activeQueues: () => ['celery'],
    revoke: (command: RevokeCommand) => {
      calls.push(`revoke ${command.taskIds.join(',')} ${command.terminate}`);
      return [];
    },
    setRateLimit: (name: string, rate: string | null) => {
      if (!rates.has(name)) return false;
      if (rate !== null && !/^\d+(\.\d+)?\/[smh]$/.test(rate)) throw new ConfigError('bad');
      rates.set(name, rate);
      return true;
    },
    setTimeLimits: () => true,
    addConsumer: async (queue: string) => void calls.push(`add ${queue}`),
    cancelConsumer: async (queue: string) => void calls.push(`cancel ${queue}`),
    resizePool: (delta: number) => (worker.concurrency = Math.max(1, worker.concurrency + delta)),
    autoscale: (max: number, min: number): [number, number] => [max, min],
    setTaskEvents: (enabled: boolean) => {
      calls.push(`events ${enabled}`);
      return true;
    },
    sendHeartbeat: () => void calls.push('heartbeat'),
    shutdown: () => void calls.push('shutdown'),
    conf: () => ({ concurrency: worker.concurrency }),
    report: () => 'conveyor',
  };
  return worker;
}

describe('remote control on the memory transport', () => {
  const broker = new MemoryBroker();
  const a = fakeWorker('a@host');
  const b = fakeWorker('b@other');
  const nodes = [a, b].map((w) => new PidboxNode(new MemoryTransport({ broker }), w));
  const control = new Control(new MemoryTransport({ broker }));

  beforeAll(async () => {
    await Promise.all(nodes.map((n) => n.start()));
  });
  afterAll(async () => {
    await control.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('collects a ping reply from every worker, in Celery reply shape', async () => {
    const replies = await control.ping({ timeoutMs: 300 });
    expect(replies).toEqual(
      expect.arrayContaining([{ 'a@host': { ok: 'pong' } }, { 'b@other': { ok: 'pong' } }]),
    );
    expect(replies).toHaveLength(2);
  });

  it('honours destination and pattern, and stops at the destination count', async () => {
    expect(await control.inspect({ destination: ['b@other'], timeoutMs: 5_000 }).ping()).toEqual({
      'b@other': { ok: 'pong' },
    });
    expect(await control.inspect({ pattern: 'a@*', timeoutMs: 300 }).stats()).toEqual({
      'a@host': { pid: process.pid, pool: { 'max-concurrency': 4 } },
    });
  });

  it('answers inspection commands', async () => {
    const inspect = control.inspect({ destination: ['a@host'], timeoutMs: 5_000 });
    expect(await inspect.registered()).toEqual({ 'a@host': ['math.add'] });
    expect(await inspect.revoked()).toEqual({ 'a@host': ['r1'] });
    expect((await inspect.activeQueues())['a@host']![0]).toMatchObject({
      name: 'celery',
      routing_key: 'celery',
      exchange: { name: 'celery', type: 'direct' },
    });
    expect((await inspect.clock())['a@host']!.clock).toBeGreaterThan(0);
  });

  it('runs control commands and replies ok or error as Celery does', async () => {
    const only = { destination: ['a@host'], timeoutMs: 5_000, reply: true };
    expect(await control.rateLimit('math.add', '5/s', only)).toEqual([
      { 'a@host': { ok: 'new rate limit set successfully' } },
    ]);
    expect(await control.inspect({ destination: ['a@host'] }).registered()).toEqual({
      'a@host': ['math.add [rate_limit=5/s]'],
    });
    expect(await control.rateLimit('math.add', 'fast', only)).toEqual([
      { 'a@host': { error: 'Invalid rate limit string: fast' } },
    ]);
    expect(await control.rateLimit('nope', '1/s', only)).toEqual([
      { 'a@host': { error: 'unknown task' } },
    ]);
    expect(await control.poolGrow(2, only)).toEqual([{ 'a@host': { ok: 'pool will grow' } }]);
    expect(a.concurrency).toBe(6);
    expect(await control.addConsumer('extra', only)).toEqual([
      { 'a@host': { ok: 'add consumer extra' } },
    ]);
    expect(await control.broadcast('no_such_thing', only)).toEqual([
      { 'a@host': { error: 'no such command: no_such_thing' } },
    ]);
    expect(a.calls).toContain('add extra');
    expect(b.calls).not.toContain('add extra');
  });

  it('sends commands without replies to every worker addressed', async () => {
    await control.revoke(['t1', 't2'], { terminate: true, destination: ['b@other'] });
    await control.enableEvents();
    await waitFor(
      () => a.calls.includes('events true') && b.calls.includes('events true'),
      'enable_events on both',
    );
    expect(b.calls).toContain('revoke t1,t2 true');
    expect(a.calls.some((c) => c.startsWith('revoke'))).toBe(false);
  });

  it('ends a wait for replies when closed, with the replies it has', async () => {
    const transport = new MemoryTransport({ broker });
    const subscribe = transport.subscribeExchange.bind(transport);
    let delivered = 0;
    jest
      .spyOn(transport, 'subscribeExchange')
      .mockImplementation((exchange, key, handler, options) =>
        subscribe(exchange, key, (m) => (handler(m), (delivered += 1)), options),
      );
    const closing = new Control(transport);
    const waiting = closing.ping({ timeoutMs: 60_000 });
    await waitFor(() => delivered === 2, 'both replies in');
    await closing.close();
    expect(await waiting).toHaveLength(2);
  });

  it('ends a wait whose reply queue is still being set up when closed, and waits no more after', async () => {
    const transport = new MemoryTransport({ broker });
    const declare = transport.declareExchange.bind(transport);
    let declaring = false;
    jest.spyOn(transport, 'declareExchange').mockImplementation(async (exchange) => {
      declaring = true;
      await sleep(50); // a slow broker
      return declare(exchange);
    });
    const subscribed = jest.spyOn(transport, 'subscribeExchange');
    const closing = new Control(transport);
    const waiting = closing.ping({ timeoutMs: 60_000 });
    await waitFor(() => declaring, 'the reply queue being set up');
    await closing.close();
    expect(await waiting).toEqual([]);
    expect(await closing.ping({ timeoutMs: 60_000 })).toEqual([]);
    expect(subscribed).toHaveBeenCalledTimes(1);
  });
});
