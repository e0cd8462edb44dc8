import { randomUUID } from 'node:crypto';
import { Conveyor, Task, TaskService, type Worker } from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { RedisResultBackend } from '@conveyor/result-redis';
import { waitFor } from '@conveyor/core/testing';
import { callCommand } from '../../packages/core/src/cli/commands/call';
import { controlCommand } from '../../packages/core/src/cli/commands/control';
import { eventsCommand } from '../../packages/core/src/cli/commands/events';
import { inspectCommand } from '../../packages/core/src/cli/commands/inspect';
import { resultCommand } from '../../packages/core/src/cli/commands/result';
import { revokeCommand } from '../../packages/core/src/cli/commands/revoke';
import { statusCommand } from '../../packages/core/src/cli/commands/status';
import { PythonCeleryWorker } from '../interop/python-celery';
import { createVhost, type TestVhost } from '../support/rabbitmq';
import { REDIS_URL } from '../support/services';
import { runCommand, type HarnessOptions } from './cli-harness';

const gate = { open: Promise.resolve() as Promise<void>, release: () => undefined as void };

@TaskService({ name: 'ctl' })
class Ctl {
  @Task()
  add(a: number, b: number): number {
    return a + b;
  }

  @Task()
  async hold(): Promise<string> {
    await gate.open;
    return 'released';
  }
}

const tsQueue = `ctl-ts-${randomUUID()}`;
const pyQueue = `ctl-py-${randomUUID()}`;
const tsName = `ts-${randomUUID()}@test`;
const MODULES = [
  statusCommand,
  inspectCommand,
  controlCommand,
  eventsCommand,
  callCommand,
  resultCommand,
  revokeCommand,
];

describe('inspect, control, status, events and revoke against a Conveyor and a Python Celery worker (own vhost)', () => {
  let vhost: TestVhost;
  let python: PythonCeleryWorker;
  let app: Conveyor;
  let worker: Worker;

  const newApp = (): Conveyor =>
    new Conveyor({
      broker: new AmqpTransport({ url: vhost.url }),
      backend: new RedisResultBackend({ url: REDIS_URL }),
      tasks: [Ctl],
      defaultQueue: tsQueue,
    });
  const conveyor = (argv: string[], options: Omit<HarnessOptions, 'app'> = {}) =>
    runCommand(MODULES, [argv[0]!, '-A', 'app.js', ...argv.slice(1)], { app: newApp, ...options });

  beforeAll(async () => {
    vhost = await createVhost('ops-control');
    app = newApp();
    worker = app.worker({
      handleSignals: false,
      queues: [tsQueue],
      hostname: tsName,
      taskEvents: true,
    });
    await worker.start();
    python = new PythonCeleryWorker(pyQueue, {
      amqpUrl: vhost.url,
      flags: ['-E', '--without-gossip', '--without-mingle'],
    });
    await python.start();
  }, 60_000);

  afterAll(async () => {
    await python?.stop();
    // Stopped before the app closes: a running worker's heartbeats would open the transport
    // again, and it would keep reconnecting to the vhost removed next.
    await worker?.stop();
    await app?.close();
    await vhost?.remove();
  });

  it('status lists both workers online, one line each', async () => {
    const run = await conveyor(['status']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.slice(0, 2).sort()).toEqual([`${python.hostname}: OK`, `${tsName}: OK`].sort());
    expect(lines.at(-1)).toBe('2 nodes online.');
    const json = await conveyor(['status', '--json']);
    expect(JSON.parse(json.stdout)).toEqual({ online: [python.hostname, tsName].sort() });
  });

  it('inspect ping, registered and active answer from both workers, and -d asks only one', async () => {
    const ping = await conveyor(['inspect', 'ping', '--json']);
    expect(Object.keys(JSON.parse(ping.stdout)).sort()).toEqual([python.hostname, tsName].sort());
    const only = await conveyor(['inspect', 'ping', '-d', tsName]);
    expect(only.stdout).toBe(`-> ${tsName}: OK\n    pong\n\n1 node online.\n`);

    const registered = JSON.parse((await conveyor(['inspect', 'registered', '--json'])).stdout);
    expect(registered[tsName]).toEqual(expect.arrayContaining(['ctl.add', 'ctl.hold']));
    expect(registered[python.hostname]).toEqual(
      expect.arrayContaining(['tasks.add', 'tasks.fail']),
    );

    gate.open = new Promise<void>((resolve) => (gate.release = resolve));
    const held = await app.client(Ctl).hold.delay();
    const active = await conveyor(['inspect', 'active']);
    gate.release();
    expect(active.code).toBe(0);
    expect(active.stdout).toContain(`-> ${tsName}: OK\n    * ctl.hold[${held.id}]`);
    expect(active.stdout).toContain(`-> ${python.hostname}: OK\n    - empty -`);
    await held.get({ timeoutMs: 10_000 });
  });

  it('inspect with no worker to answer ends with 69', async () => {
    const run = await conveyor(['inspect', 'ping', '-d', 'nobody@nowhere', '--timeout', '0.3']);
    expect(run.code).toBe(69);
  });

  it('control pool_grow and add_consumer change what the Conveyor worker does; rate_limit is answered', async () => {
    const before = JSON.parse(
      (await conveyor(['inspect', 'stats', '-d', tsName, '--json'])).stdout,
    );
    const grow = await conveyor(['control', 'pool_grow', '2', '-d', tsName]);
    expect(grow.code).toBe(0);
    expect(grow.stdout).toMatch(new RegExp(`^-> ${tsName}: OK\\n`));
    const after = JSON.parse((await conveyor(['inspect', 'stats', '-d', tsName, '--json'])).stdout);
    expect(after[tsName].pool['max-concurrency']).toBe(before[tsName].pool['max-concurrency'] + 2);

    const extra = `ctl-extra-${randomUUID()}`;
    expect((await conveyor(['control', 'add_consumer', extra, '-d', tsName])).code).toBe(0);
    const queues = JSON.parse(
      (await conveyor(['inspect', 'active_queues', '-d', tsName, '--json'])).stdout,
    );
    expect(queues[tsName].map((q: { name: string }) => q.name)).toEqual(
      expect.arrayContaining([tsQueue, extra]),
    );

    const limited = await conveyor([
      'control',
      'rate_limit',
      'tasks.add',
      '5/s',
      '-d',
      python.hostname,
      '--json',
    ]);
    expect(limited.code).toBe(0);
    expect(JSON.parse(limited.stdout)[python.hostname]).toHaveProperty('ok');
  });

  it('revoke stores REVOKED and both workers remember the id; result then ends with 1', async () => {
    const sent = await conveyor(['call', 'ctl.add', '-a', '[1, 2]', '--countdown', '600']);
    const id = sent.stdout.trim();
    expect((await conveyor(['revoke', id])).stdout).toBe(`revoked ${id}\n`);
    await waitFor(
      async () => {
        const revoked = JSON.parse((await conveyor(['inspect', 'revoked', '--json'])).stdout);
        return [tsName, python.hostname].every((node) => revoked[node]?.includes(id));
      },
      'both workers to list the revoked id',
      10_000,
    );
    const result = await conveyor(['result', id]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^${id} REVOKED\\n`));
  });

  it('events shows the task events of both workers as they happen, one line each; --dump prints them raw', async () => {
    const stop = new AbortController();
    let seen = '';
    let listening!: () => void;
    const ready = new Promise<void>((resolve) => (listening = resolve));
    const watch = (stream: 'stdout' | 'stderr', text: string): void => {
      if (stream === 'stderr' && text.includes('listening')) listening();
      if (stream === 'stdout') seen += text;
    };
    const running = conveyor(['events'], { signal: stop.signal, watch });
    await ready;
    const ts = await app.client(Ctl).add.delay(2, 2);
    await ts.get({ timeoutMs: 10_000 });
    const py = await app.send('tasks.add', [3, 3], { queue: pyQueue });
    await py.get({ timeoutMs: 10_000 });
    await waitFor(
      () =>
        seen.includes(`task-succeeded ctl.add[${ts.id}]`) &&
        seen.includes(`task-succeeded tasks.add[${py.id}]`),
      'both task-succeeded events',
      10_000,
    );
    stop.abort();
    const run = await running;
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`${tsName} task-succeeded ctl\\.add\\[${ts.id}\\]`));
    expect(run.stdout).toMatch(
      new RegExp(`${python.hostname} task-succeeded tasks\\.add\\[${py.id}\\]`),
    );
    expect(run.stdout).toMatch(new RegExp(`${tsName} task-received ctl\\.add\\[${ts.id}\\] args=`));

    const dumpStop = new AbortController();
    let dumpSeen = '';
    let dumping!: () => void;
    const dumpReady = new Promise<void>((resolve) => (dumping = resolve));
    const dump = conveyor(['events', '--json'], {
      signal: dumpStop.signal,
      watch: (stream, text) => {
        if (stream === 'stderr' && text.includes('listening')) dumping();
        if (stream === 'stdout') dumpSeen += text;
      },
    });
    await dumpReady;
    const again = await app.client(Ctl).add.delay(5, 5);
    await again.get({ timeoutMs: 10_000 });
    const succeeded = (): Record<string, unknown> | undefined =>
      dumpSeen
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((event) => event.type === 'task-succeeded' && event.uuid === again.id);
    await waitFor(() => succeeded() !== undefined, 'the raw task-succeeded event', 10_000);
    dumpStop.abort();
    expect((await dump).code).toBe(0);
    expect(succeeded()).toMatchObject({ hostname: tsName, result: '10' });
  });
});
