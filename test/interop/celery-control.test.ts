import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { Conveyor, Task, TaskService, type Worker } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { createVhost, rabbitmqctl, type TestVhost } from '../support/rabbitmq';
import { celeryCommand, PythonCeleryWorker } from './python-celery';

/**
 * Celery's own command line (`celery inspect`, `celery status`, `celery control`) against a
 * Conveyor worker beside a Python worker, and Conveyor's `app.control` against both. Everything
 * runs in a vhost of this file, since `celery.pidbox` reaches every worker of a vhost.
 */
const queue = `ctl-${randomUUID()}`;
const started: Array<{ name: string; at: number }> = [];
const gates = new Map<number, () => void>();

@TaskService({ name: 'ctl', queue })
class ControlTasks {
  @Task()
  async hold(n: number): Promise<number> {
    started.push({ name: `hold ${n}`, at: Date.now() });
    await new Promise<void>((resolve) => gates.set(n, resolve));
    return n;
  }

  @Task()
  tick(n: number): number {
    started.push({ name: `tick ${n}`, at: Date.now() });
    return n;
  }
}

let vhost: TestVhost;
let python: PythonCeleryWorker;
let app: Conveyor;
let worker: Worker;
const tsHost = `ts-${randomUUID()}@${hostname()}`;

/**
 * `celery <args> -j` in this vhost, its JSON output parsed. Addressed to both workers, so Celery
 * stops waiting once both replied instead of waiting out its timeout.
 */
async function celeryJson(...args: string[]): Promise<Record<string, unknown>> {
  const both = `${tsHost},${python.hostname}`;
  const out = await celeryCommand([...args, '-j', '-t', '10', '-d', both], vhost.url);
  return JSON.parse(out.trim().split('\n')[0]!) as Record<string, unknown>;
}

function releaseAll(): void {
  for (const release of gates.values()) release();
  gates.clear();
}

beforeAll(async () => {
  vhost = await createVhost('control');
  python = new PythonCeleryWorker('celery', { amqpUrl: vhost.url });
  app = new Conveyor({
    broker: new AmqpTransport({ url: vhost.url }),
    backend: null,
    tasks: [ControlTasks],
  });
  worker = app.worker({ hostname: tsHost, concurrency: 1, handleSignals: false });
  await Promise.all([python.start(), worker.start()]);
}, 60_000);

afterAll(async () => {
  releaseAll();
  await worker?.stop();
  await app?.close();
  await python?.stop();
  await vhost?.remove();
}, 60_000);

describe('Celery remote control and Conveyor workers', () => {
  it('celery inspect ping and celery status list the Conveyor worker beside the Python worker', async () => {
    const pings = await celeryJson('inspect', 'ping');
    expect(pings).toEqual({ [tsHost]: { ok: 'pong' }, [python.hostname]: { ok: 'pong' } });
    const status = await celeryJson('status');
    expect(Object.keys(status).sort()).toEqual([tsHost, python.hostname].sort());
  });

  it('celery inspect stats and registered describe the Conveyor worker', async () => {
    const stats = await celeryJson('inspect', 'stats');
    expect(stats[tsHost]).toMatchObject({
      pid: process.pid,
      pool: { 'max-concurrency': 1 },
      prefetch_count: 1,
    });
    expect(stats[python.hostname]).toMatchObject({ pool: { 'max-concurrency': 1 } });
    const registered = await celeryJson('inspect', 'registered');
    expect(registered[tsHost]).toEqual(['ctl.hold', 'ctl.tick']);
    expect(registered[python.hostname]).toEqual(expect.arrayContaining(['tasks.add']));
  });

  it('celery inspect active lists the task a Conveyor worker is running', async () => {
    const result = await app.client(ControlTasks).hold.delay(1);
    await waitFor(() => gates.has(1), 'hold(1) to start');
    const active = (await celeryJson('inspect', 'active')) as Record<
      string,
      Array<Record<string, unknown>>
    >;
    expect(active[tsHost]).toEqual([
      expect.objectContaining({ id: result.id, name: 'ctl.hold', hostname: tsHost, args: [1] }),
    ]);
    releaseAll();
  });

  it('app.control.inspect().ping() lists the Python worker and the Conveyor worker', async () => {
    const pings = await app.control.inspect({ timeoutMs: 3_000, limit: 2 }).ping();
    expect(pings).toEqual({ [tsHost]: { ok: 'pong' }, [python.hostname]: { ok: 'pong' } });
    const stats = await app.control
      .inspect({ destination: [python.hostname], timeoutMs: 3_000 })
      .stats();
    expect(stats[python.hostname]).toMatchObject({ pid: expect.any(Number) });
  });

  it('celery control rate_limit spaces the runs of a task on the Conveyor worker', async () => {
    const out = await celeryCommand(
      ['control', 'rate_limit', 'ctl.tick', '4/s', '-d', tsHost],
      vhost.url,
    );
    expect(out).toContain('new rate limit set successfully');
    started.length = 0;
    const client = app.client(ControlTasks);
    for (let n = 0; n < 4; n += 1) await client.tick.delay(n);
    await waitFor(() => started.length === 4, 'four ticks', 15_000);
    // 4/s: slots 250 ms apart, reserved as the messages arrive, so four runs span at least
    // three intervals (less the few ms the first one took to start); unlimited, they would
    // run within milliseconds of each other.
    expect(started[3]!.at - started[0]!.at).toBeGreaterThanOrEqual(700);
    await celeryCommand(['control', 'rate_limit', 'ctl.tick', '0', '-d', tsHost], vhost.url);
  });

  it('celery control pool_grow lets the Conveyor worker run one more task at once', async () => {
    const client = app.client(ControlTasks);
    await client.hold.delay(2);
    await client.hold.delay(3);
    await waitFor(() => gates.size === 1, 'one hold to start');
    // Concurrency 1 and prefetch 1: the other message waits in the broker.
    expect(
      Number(
        (await rabbitmqctl('list_queues', '-p', vhost.name, 'name', 'messages_ready'))
          .split('\n')
          .find((l) => l.startsWith(`${queue}\t`))
          ?.split('\t')[1],
      ),
    ).toBe(1);
    const out = await celeryCommand(['control', 'pool_grow', '1', '-d', tsHost], vhost.url);
    expect(out).toContain('pool will grow');
    await waitFor(() => gates.size === 2, 'the second hold to start once the pool grew');
    releaseAll();
  });

  it('celery control add_consumer makes the Conveyor worker consume another queue', async () => {
    const extra = `${queue}-extra`;
    const out = await celeryCommand(['control', 'add_consumer', extra, '-d', tsHost], vhost.url);
    expect(out).toContain(`add consumer ${extra}`);
    await waitFor(async () => {
      const queues = await app.control.inspect({ destination: [tsHost] }).activeQueues();
      return (queues[tsHost] ?? []).some((q) => q.name === extra);
    }, 'the worker to consume the extra queue');
    started.length = 0;
    await app.send('ctl.tick', [99], { queue: extra });
    await waitFor(() => started.some((s) => s.name === 'tick 99'), 'tick(99) from the extra queue');
  });
});
