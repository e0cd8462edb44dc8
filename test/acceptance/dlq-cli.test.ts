import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { deadLetterQueueName } from '@conveyor/core';
import { readyCount, withRawChannel } from '../support/rabbitmq';
import { AMQP_URL } from '../support/services';
import { ROOT } from '../support/faults/build';
import { deadLetterTasks } from '../support/faults/dead-letters';
import { useFaultScopes, type FaultScope } from '../support/faults/fault-scope';
import { WorkerProcess } from '../support/faults/worker-process';

const bin = join(ROOT, 'packages/core/bin/conveyor.js');
/** The header a worker's rate limiter puts on a message it re-delays (its reserved slot). */
const RATE_SLOT_HEADER = 'x-conveyor-rate-slot';
const appModule = join(__dirname, 'fixtures/dlq-app.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('conveyor dlq list|replay|purge against RabbitMQ', () => {
  const openScope = useFaultScopes();
  let scope: FaultScope;

  /**
   * Runs `conveyor dlq …` on this scope's broker and backend (or `env`'s); stdin is a pipe, not
   * a terminal. `onOutput` sees stdout as it grows.
   */
  const dlqWith = (
    env: Record<string, string>,
    args: string[],
    onOutput?: (stdout: string) => void,
  ): Promise<Run> => {
    const child = spawn(process.execPath, [bin, 'dlq', ...args, '-A', appModule], {
      cwd: ROOT,
      env: { ...process.env, ...scope.workerEnv(), ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      onOutput?.(stdout);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  };
  const dlq = (...args: string[]): Promise<Run> => dlqWith({}, args);

  /** Sends `count` tasks to a worker that knows none, so each ends in `.dead` (FAILURE stored). */
  const deadLetter = (count: number): Promise<string[]> =>
    deadLetterTasks(scope.producer(), scope.queue, count);

  it('lists, refuses an unconfirmed purge, purges by id, and replays the rest to SUCCESS', async () => {
    scope = openScope('dlq-cli');
    const [first, second, third] = await deadLetter(3);

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

  it('a replay cut off by a lost connection prints what it replayed and says so (exit 69)', async () => {
    scope = openScope('dlq-cli-cut');
    const ids = await deadLetter(100);
    const cutter = await scope.proxyTo(AMQP_URL);
    const env = {
      CONVEYOR_AMQP_URL: cutter.rewrite(AMQP_URL),
      CONVEYOR_CONNECT_TIMEOUT_MS: '1500',
    };
    // The first line out: cut the broker off for good, well before the hundredth replay.
    const run = await dlqWith(env, ['replay', scope.queue, '--all'], (stdout) => {
      if (stdout.includes('replayed ')) cutter.block();
    });
    const lines = run.stdout.split('\n').filter((l) => l.startsWith('replayed '));
    expect(run.code).toBe(69);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(ids.length);
    for (const line of lines) expect(ids).toContain(line.slice('replayed '.length));
    expect(run.stderr).toContain(
      `conveyor: dlq replay stopped: the broker or result backend could not be reached or the ` +
        `connection was lost`,
    );
    expect(run.stderr).toContain(`; ${lines.length} replayed before that (listed above); `);
    expect(run.stderr).not.toContain('unreachable at startup');
    // Nothing lost: each is replayed to the queue or still a dead letter (a lost ack: both).
    const remaining = await readyCount(deadLetterQueueName(scope.queue));
    expect(remaining + (await readyCount(scope.queue))).toBeGreaterThanOrEqual(ids.length);
  }, 60_000);

  it('a replay resets retries and leaves the rate slot behind, and warns of an expired task', async () => {
    scope = openScope('dlq-cli-fresh');
    const [late, fine] = await deadLetter(2);
    const producer = scope.producer();
    const dead = deadLetterQueueName(scope.queue);
    const past = '2020-01-01T00:00:00+00:00';
    // Give both dead letters a past: retried twice, a rate slot an hour ahead, one expired.
    await withRawChannel(async (channel) => {
      for (let i = 0; i < 2; i += 1) {
        const got = await channel.get(dead, { noAck: false });
        if (!got) throw new Error('dead letter missing');
        const headers = {
          ...got.properties.headers,
          retries: 2,
          [RATE_SLOT_HEADER]: Date.now() + 3_600_000,
          ...(got.properties.headers?.id === late ? { expires: past } : {}),
        };
        channel.sendToQueue(dead, got.content, { ...got.properties, headers });
        channel.ack(got);
      }
    });
    const replayed = await dlq('replay', scope.queue, '--all');
    expect(replayed.code).toBe(0);
    expect(replayed.stdout).toContain(`warning: ${late} had expired`);
    expect(replayed.stdout).not.toContain(`warning: ${fine}`);
    const copies = [];
    for (;;) {
      const fetched = await producer.transport.fetch!(scope.queue);
      if (!fetched) break;
      copies.push(fetched.message.headers);
      await fetched.ack();
    }
    expect(copies.map((h) => h.id).sort()).toEqual([late, fine].sort());
    for (const headers of copies) {
      expect(headers.retries).toBe(0);
      expect(headers[RATE_SLOT_HEADER]).toBeUndefined();
    }
    expect(copies.find((h) => h.id === late)!.expires).toBe(past);
  }, 60_000);
});
