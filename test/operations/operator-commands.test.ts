import { randomUUID } from 'node:crypto';
import { Conveyor, deadLetterQueueName, Task, TaskService } from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { RedisResultBackend } from '@conveyor/result-redis';
import { waitFor } from '@conveyor/core/testing';
import { callCommand } from '../../packages/core/src/cli/commands/call';
import { purgeCommand } from '../../packages/core/src/cli/commands/purge';
import { queuesCommand } from '../../packages/core/src/cli/commands/queues';
import { resultCommand } from '../../packages/core/src/cli/commands/result';
import { PythonCeleryWorker } from '../interop/python-celery';
import {
  delayedIn as delayedInNamespace,
  delayNamespace,
  listQueues,
  removeDelayNamespace,
  removeQueues,
} from '../support/rabbitmq';
import { AMQP_URL, RABBITMQ_MANAGEMENT_URL, REDIS_URL } from '../support/services';
import { runCommand, type HarnessOptions } from './cli-harness';

@TaskService({ name: 'ops' })
class Ops {
  @Task()
  add(a: number, b: number): number {
    return a + b;
  }
}

const tsQueue = `ops-ts-${randomUUID()}`;
const pyQueue = `ops-py-${randomUUID()}`;
const backlog = `ops-backlog-${randomUUID()}`;
const namespace = delayNamespace();
const delayedIn = (rows: Awaited<ReturnType<typeof listQueues>>) =>
  delayedInNamespace(rows, namespace);
const MODULES = [queuesCommand, purgeCommand, callCommand, resultCommand];

function newApp(): Conveyor {
  return new Conveyor({
    broker: new AmqpTransport({
      url: AMQP_URL,
      delayNamespace: namespace,
      managementUrl: RABBITMQ_MANAGEMENT_URL,
      onError: () => undefined,
    }),
    backend: new RedisResultBackend({ url: REDIS_URL }),
    tasks: [Ops],
    defaultQueue: tsQueue,
  });
}

function conveyor(argv: string[], options: Omit<HarnessOptions, 'app'> = {}) {
  return runCommand(MODULES, [argv[0]!, '-A', 'app.js', ...argv.slice(1)], {
    app: newApp,
    ...options,
  });
}

describe('operator commands against RabbitMQ, Redis, a Conveyor worker and a Python Celery worker', () => {
  const python = new PythonCeleryWorker(pyQueue);
  let app: Conveyor;

  beforeAll(async () => {
    app = newApp();
    await app.transport.declareQueue({ name: backlog });
    await app.worker({ handleSignals: false, queues: [tsQueue] }).start();
    await python.start();
  }, 60_000);

  afterAll(async () => {
    await python.stop();
    await app.close();
    await removeQueues([tsQueue, pyQueue, backlog]);
    await removeDelayNamespace(namespace);
  });

  it('call --wait runs a task on the Conveyor worker and one on the Python worker, and prints their results', async () => {
    const conveyorRun = await conveyor(['call', 'ops.add', '-a', '[2, 3]', '--wait', '--json']);
    expect(conveyorRun.code).toBe(0);
    expect(JSON.parse(conveyorRun.stdout)).toMatchObject({ state: 'SUCCESS', result: 5 });

    const pythonRun = await conveyor([
      'call',
      'tasks.add',
      '-a',
      '[4, 5]',
      '-Q',
      pyQueue,
      '--wait',
    ]);
    expect(pythonRun.code).toBe(0);
    expect(pythonRun.stdout).toMatch(/^[0-9a-f-]{36} SUCCESS\n9\n$/);
  });

  it('call --wait ends with exit code 1 and the exception when the task fails (a Python ValueError)', async () => {
    const run = await conveyor(['call', 'tasks.fail', '-a', '["boom"]', '-Q', pyQueue, '--wait']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/ FAILURE\nValueError: boom\n$/);
  });

  it('call prints the id of a task sent with keyword arguments, and result --wait prints its result', async () => {
    const sent = await conveyor(['call', 'ops.add', '-k', '{"a": 20, "b": 22}']);
    expect(sent.code).toBe(0);
    const id = sent.stdout.trim();
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const result = await conveyor(['result', id, '--wait', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ id, state: 'SUCCESS', result: 42 });
  });

  it('result shows PENDING for an unknown id, and result --wait ends with 75 when the wait runs out', async () => {
    const unknown = randomUUID();
    const pending = await conveyor(['result', unknown]);
    expect(pending).toMatchObject({ code: 0, stdout: `${unknown} PENDING\n` });
    const late = await conveyor(['call', 'ops.add', '-a', '[1, 1]', '--countdown', '600']);
    const waited = await conveyor(['result', late.stdout.trim(), '--wait', '--timeout', '0.3']);
    expect(waited.code).toBe(75);
    expect(waited.stderr).toMatch(/PENDING/);
  });

  it('call refuses arguments that are not a JSON array with exit code 64', async () => {
    const run = await conveyor(['call', 'ops.add', '-a', '[1,']);
    expect(run.code).toBe(64);
    expect(run.stderr).toMatch(/--args.*is not JSON/);
  });

  it('queues shows what rabbitmqctl lists: backlog, consumers of both workers, dead letters and delayed messages', async () => {
    const delayedBefore = delayedIn(await listQueues());
    for (let i = 0; i < 5; i += 1) {
      expect((await conveyor(['call', 'ops.add', '-a', '[1, 2]', '-Q', backlog])).code).toBe(0);
    }
    for (let i = 0; i < 3; i += 1) {
      await conveyor(['call', 'ops.add', '-a', '[1, 2]', '--countdown', '600', '-Q', backlog]);
    }
    // Two unreadable messages, which the Conveyor worker dead-letters.
    for (let i = 0; i < 2; i += 1) {
      await app.transport.publish(
        { headers: { id: randomUUID(), task: 'ops.add' }, properties: {}, body: Buffer.from('{') },
        { queue: tsQueue },
      );
    }
    await waitFor(
      async () => (await listQueues()).get(deadLetterQueueName(tsQueue))?.ready === 2,
      'two dead letters',
      10_000,
    );

    const run = await conveyor(['queues', '-Q', `${tsQueue},${pyQueue},${backlog}`, '--json']);
    const rows = await listQueues();
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as {
      queues: Array<{ name: string; ready: number; consumers: number; dead: number }>;
      delayed: number;
    };
    for (const queue of report.queues) {
      expect(queue.ready).toBe(rows.get(queue.name)!.ready);
      expect(queue.consumers).toBe(rows.get(queue.name)!.consumers);
    }
    expect(report.queues.map((q) => [q.name, q.ready, q.consumers, q.dead])).toEqual([
      [tsQueue, 0, 1, rows.get(deadLetterQueueName(tsQueue))!.ready],
      [pyQueue, 0, 1, 0],
      [backlog, 5, 0, 0],
    ]);
    expect(report.queues[0]!.dead).toBe(2);
    expect(report.delayed).toBe(delayedIn(rows));
    expect(report.delayed).toBe(delayedBefore + 3);

    const human = await conveyor(['queues', '-Q', `${backlog},${tsQueue}`]);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^QUEUE\s+READY\s+UNACKED\s+CONSUMERS\s+DEAD\s+PUBLISH\/S\s+DELIVER\/S\s+ACK\/S$/,
    );
    expect(lines[1]).toMatch(new RegExp(`^${backlog}\\s+5\\s+\\S+\\s+0\\s+0\\s`));
    expect(lines[2]).toMatch(new RegExp(`^${tsQueue}\\s+0\\s+\\S+\\s+1\\s+2\\s`));
    // Columns line up: every row is as long as the header up to its last column's end.
    expect(lines[1]!.indexOf(' 5 ') + 2).toBe(lines[0]!.indexOf('READY') + 'READY'.length);
    expect(human.stdout).toContain(`Delayed, all queues: ${delayedBefore + 3}`);
    expect(human.stdout).not.toContain('\u001b[');
    const coloured = await conveyor(['queues', '-Q', backlog], { env: { FORCE_COLOR: '1' } });
    expect(coloured.stdout).toContain('\u001b[1mQUEUE');
  });

  it('purge refuses without -f when there is no terminal to ask on, and deletes nothing', async () => {
    await waitFor(async () => (await listQueues()).get(backlog)?.ready === 5, 'the backlog', 5_000);
    const run = await conveyor(['purge', '-Q', backlog]);
    expect(run.code).toBe(64);
    expect(run.stderr).toMatch(/no terminal to ask on: pass -f/);
    expect((await listQueues()).get(backlog)!.ready).toBe(5);
  });

  it('purge asks on a terminal: no keeps everything, yes purges only the queue named', async () => {
    const delayedBefore = delayedIn(await listQueues());
    const declined = await conveyor(['purge', '-Q', backlog], { tty: true, answer: 'n' });
    expect(declined.code).toBe(1);
    expect((await listQueues()).get(backlog)!.ready).toBe(5);

    const accepted = await conveyor(['purge', '-Q', backlog], { tty: true, answer: 'y' });
    expect(accepted.code).toBe(0);
    expect(accepted.stderr).toContain(`Purge ${backlog} (5 ready)?`);
    expect(accepted.stdout).toBe(`purged 5 from ${backlog}\n`);
    const rows = await listQueues();
    expect(rows.get(backlog)!.ready).toBe(0);
    expect(rows.get(deadLetterQueueName(tsQueue))!.ready).toBe(2);
    expect(delayedIn(rows)).toBe(delayedBefore);
  });

  it('purge -f purges without asking; a queue that does not exist stops it before anything is purged', async () => {
    await conveyor(['call', 'ops.add', '-a', '[1, 2]', '-Q', backlog]);
    const missing = `ops-missing-${randomUUID()}`;
    const refused = await conveyor(['purge', '-Q', `${backlog},${missing}`, '-f']);
    expect(refused.code).toBe(64);
    expect(refused.stderr).toContain(`no such queue: ${missing}`);
    expect((await listQueues()).get(backlog)!.ready).toBe(1);

    const forced = await conveyor(['purge', '-Q', deadLetterQueueName(tsQueue), '-f', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ purged: { [deadLetterQueueName(tsQueue)]: 2 } });
    expect((await listQueues()).get(backlog)!.ready).toBe(1);
  });
});
