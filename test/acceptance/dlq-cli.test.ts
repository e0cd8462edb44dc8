import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { deadLetterQueueName, type AsyncResult } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { readyCount } from '../support/rabbitmq';
import { buildPackages, ROOT } from '../support/faults/build';
import { FaultScope } from '../support/faults/fault-scope';
import { killAllWorkers, WorkerProcess } from '../support/faults/worker-process';

const bin = join(ROOT, 'packages/core/bin/conveyor.js');
const appModule = join(__dirname, 'fixtures/dlq-app.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('conveyor dlq list|replay|purge against RabbitMQ', () => {
  let scope: FaultScope;

  /** Runs `conveyor dlq …` on this scope's broker and backend; stdin is a pipe, not a terminal. */
  const dlq = (...args: string[]): Promise<Run> => {
    const child = spawn(process.execPath, [bin, 'dlq', ...args, '-A', appModule], {
      cwd: ROOT,
      env: { ...process.env, ...scope.workerEnv() },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  };

  beforeAll(() => buildPackages(), 120_000);
  afterEach(async () => {
    await killAllWorkers();
    await scope.cleanup();
  });

  it('lists, refuses an unconfirmed purge, purges by id, and replays the rest to SUCCESS', async () => {
    scope = new FaultScope('dlq-cli');
    const producer = scope.producer();
    // A worker that knows no task dead-letters each one (FAILURE NotRegistered stored).
    const blind = producer.worker({ queues: [scope.queue], handleSignals: false });
    await blind.start();
    const sent: AsyncResult<unknown>[] = [];
    for (let i = 0; i < 3; i += 1) sent.push(await producer.send('faults.record', [i, 0]));
    await waitFor(
      async () => (await readyCount(deadLetterQueueName(scope.queue))) === 3,
      'three dead letters',
    );
    await blind.stop();
    const [first, second, third] = sent.map((r) => r.id);

    const listed = await dlq('list', scope.queue, '--json');
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    const page = JSON.parse(listed.stdout) as {
      items: Array<{ id: string; task: string; deadLetteredBy: string; reason: string }>;
      total: number;
    };
    expect(page.total).toBe(3);
    expect(page.items.map((d) => d.id)).toEqual([first, second, third]);
    expect(page.items[0]).toMatchObject({ task: 'faults.record', deadLetteredBy: 'worker' });
    expect(page.items[0]!.reason).toMatch(/not registered/);

    const text = await dlq('list', scope.queue, '--limit', '2');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ID +TASK +DEAD-LETTERED AT/);
    expect(text.stdout).toContain(second);
    expect(text.stdout).not.toContain(third);
    expect(text.stdout).toContain('1-2 of 3; next page: --offset 2');

    const unconfirmed = await dlq('purge', scope.queue, '--id', first!);
    expect(unconfirmed.code).toBe(64);
    expect(unconfirmed.stderr).toMatch(/no terminal.*-f/);
    expect(await readyCount(deadLetterQueueName(scope.queue))).toBe(3);

    expect((await dlq('replay', scope.queue)).code).toBe(64);

    const purged = await dlq('purge', scope.queue, '--id', first!, '-f');
    expect(purged).toMatchObject({ code: 0 });
    expect(purged.stdout).toContain(`1 deleted from '${deadLetterQueueName(scope.queue)}'`);

    await WorkerProcess.start(scope.workerEnv());
    const replayed = await dlq('replay', scope.queue, '--all');
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain('2 replayed');
    // Read through a backend of its own: the producer's still holds the FAILUREs it was told of
    // moments after sending (a Redis backend keeps those for `watchOnSendMs`, for the first get()).
    const reader = scope.resultBackend();
    try {
      expect(await reader.waitForReady(second!, 10_000)).toMatchObject({
        status: 'SUCCESS',
        result: { n: 1 },
      });
      expect(await reader.waitForReady(third!, 10_000)).toMatchObject({
        status: 'SUCCESS',
        result: { n: 2 },
      });
      // The purged one was not replayed: its FAILURE stands.
      expect(await reader.get(first!)).toMatchObject({ status: 'FAILURE' });
    } finally {
      await reader.close();
    }
    expect(await readyCount(deadLetterQueueName(scope.queue))).toBe(0);
  }, 60_000);
});
