import { randomUUID } from 'node:crypto';
import {
  Conveyor,
  MemoryResultBackend,
  Task,
  TaskService,
  type EventMonitor,
  type Worker,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { queued, sharedBroker } from './fixtures';

const queue = `remote-${randomUUID()}`;
const gates: Array<() => void> = [];
const ran: number[] = [];

@TaskService({ name: 'remote', queue })
class RemoteTasks {
  @Task()
  async hold(n: number): Promise<number> {
    await new Promise<void>((resolve) => gates.push(resolve));
    ran.push(n);
    return n;
  }

  @Task()
  async slow(ms: number): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  }
}

function releaseAll(): void {
  for (const release of gates.splice(0)) release();
}

/** A producer app and workers on one in-memory broker, with a cluster state of its events. */
describe('a worker under remote control and in the cluster state (memory broker)', () => {
  const { connect } = sharedBroker();
  const backend = new MemoryResultBackend();
  const app = new Conveyor({ broker: connect(), backend, tasks: [RemoteTasks] });
  const workers: Worker[] = [];
  let monitor: EventMonitor;

  function worker(options: Parameters<Conveyor['worker']>[0] = {}): Worker {
    const own = new Conveyor({ broker: connect(), backend, tasks: [RemoteTasks] });
    const w = own.worker({ handleSignals: false, heartbeatIntervalMs: 100, ...options });
    workers.push(w);
    return w;
  }

  beforeAll(async () => {
    monitor = await app.events.monitor();
  });
  afterEach(async () => {
    releaseAll();
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });
  afterAll(async () => {
    await monitor.stop();
    await app.close();
  });

  it('is alive by its heartbeats, sends task events once enable_events asks, and goes offline at stop', async () => {
    const w = worker({ hostname: `a-${randomUUID()}@test` });
    await w.start();
    await waitFor(() => monitor.state.isAlive(w.hostname), 'the worker alive');
    const quiet = await app.client(RemoteTasks).slow.delay(1);
    await quiet.get({ timeoutMs: 5_000 });
    expect(monitor.state.tasks.has(quiet.id)).toBe(false); // task events are off by default
    expect(await app.control.enableEvents({ destination: [w.hostname], reply: true })).toEqual([
      { [w.hostname]: { ok: 'task events enabled' } },
    ]);
    const seen = await app.client(RemoteTasks).slow.delay(2);
    await seen.get({ timeoutMs: 5_000 });
    await waitFor(() => monitor.state.tasks.get(seen.id)?.state === 'SUCCESS', 'SUCCESS by events');
    expect(monitor.state.tasks.get(seen.id)).toMatchObject({
      name: 'remote.slow',
      worker: w.hostname,
      result: '2',
    });
    await w.stop();
    await waitFor(() => monitor.state.workers.get(w.hostname)?.offline === true, 'offline');
  });

  it('warns when another node already answers to its hostname', async () => {
    const name = `same-${randomUUID()}@test`;
    await worker({ hostname: name }).start();
    const second = worker({ hostname: name });
    const warnings: Error[] = [];
    second.on('worker-error', (error) => warnings.push(error));
    await second.start();
    await waitFor(() => warnings.length > 0, 'the duplicate-name warning');
    expect(warnings[0]!.message).toMatch(/another node already uses the name same-/);
  });

  it('lists running and waiting tasks, and pool_shrink lets fewer run at once', async () => {
    const w = worker({ hostname: `b-${randomUUID()}@test`, concurrency: 2 });
    await w.start();
    const client = app.client(RemoteTasks);
    const ids = [];
    for (let n = 0; n < 3; n += 1) ids.push((await client.hold.delay(n)).id);
    await waitFor(() => gates.length === 2, 'two running');
    const inspect = app.control.inspect({ destination: [w.hostname] });
    expect((await inspect.active())[w.hostname]!.map((t) => t.id).sort()).toEqual(
      ids.slice(0, 2).sort(),
    );
    expect(await inspect.queryTask(ids[0]!)).toEqual({
      [w.hostname]: { [ids[0]!]: ['active', expect.objectContaining({ id: ids[0] })] },
    });
    await app.control.poolShrink(1, { destination: [w.hostname], reply: true });
    expect(w.concurrency).toBe(1);
    releaseAll();
    // Two finished; the third now runs alone.
    await waitFor(() => ran.length >= 2 && gates.length === 1, 'the third alone');
    expect((await inspect.stats())[w.hostname]).toMatchObject({ pool: { 'max-concurrency': 1 } });
  });

  it('applies a time limit set by time_limit to the next run', async () => {
    const w = worker({ hostname: `c-${randomUUID()}@test` });
    await w.start();
    await app.control.timeLimit(
      'remote.slow',
      { hard: 0.05 },
      { destination: [w.hostname], reply: true },
    );
    const result = await app.client(RemoteTasks).slow.delay(2_000);
    await expect(result.get({ timeoutMs: 5_000 })).rejects.toThrow(
      /exceeded its hard time limit of 50 ms/,
    );
  });

  it('a shutdown command stops the worker gracefully: the task it ran finishes, waiting messages go back for another worker', async () => {
    const name = `d-${randomUUID()}@test`;
    const w = worker({ hostname: name, concurrency: 1, prefetchMultiplier: 3 });
    await w.start();
    const client = app.client(RemoteTasks);
    const results = [];
    for (let n = 10; n < 13; n += 1) results.push(await client.hold.delay(n));
    await waitFor(() => gates.length === 1, 'one running');
    await app.control.shutdown({ destination: [name] });
    await waitFor(() => monitor.state.workers.get(name)?.offline === true, 'worker-offline');
    releaseAll();
    await waitFor(() => ran.includes(10), 'the running task to finish');
    const other = worker({ hostname: `e-${randomUUID()}@test` });
    await other.start();
    await waitFor(() => gates.length === 2, 'the two others, on the other worker');
    releaseAll();
    expect(await Promise.all(results.map((r) => r.get({ timeoutMs: 5_000 })))).toEqual([
      10, 11, 12,
    ]);
    expect(queued(connect(), queue)).toEqual([]);
  });
});
