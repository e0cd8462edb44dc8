import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { DEAD_LETTER_REASON_HEADER, deadLetterQueueName } from '@conveyor/core/plugin';
import { sleep, waitFor } from '@conveyor/core/testing';
import { rabbitmqctl, withRawChannel } from '../support/rabbitmq';
import { AMQP_URL } from '../support/services';
import { useFaultScopes } from '../support/faults/fault-scope';
import { expectSound, Ledger, returnedItsNumber } from '../support/faults/ledger';
import { WorkerProcess } from '../support/faults/worker-process';
import { validHeaders, validMessage } from '../support/faults/messages';

/** Live counts of a queue from rabbitmqctl (the management API samples; this does not). */
async function queueCounts(queue: string): Promise<{ ready: number; unacked: number }> {
  const out = await rabbitmqctl('list_queues', 'name', 'messages_ready', 'messages_unacknowledged');
  const row = out
    .split('\n')
    .map((l) => l.split('\t'))
    .find(([name]) => name === queue);
  return { ready: Number(row?.[1] ?? NaN), unacked: Number(row?.[2] ?? NaN) };
}

describe('acceptance: a real worker on RabbitMQ + Redis', () => {
  const openScope = useFaultScopes();

  it('10,000 tasks through 2 workers: every result present, none run twice without a redelivery', async () => {
    const scope = openScope('accept-10k');
    const ledger = new Ledger('acceptance: 10,000 tasks, 2 workers');
    const producer = scope.producer();
    const settings = scope.workerEnv({ concurrency: 50, prefetchMultiplier: 4 });
    const workers = await Promise.all([
      WorkerProcess.start(settings),
      WorkerProcess.start(settings),
    ]);
    let next = 0;
    await Promise.all(
      Array.from({ length: 500 }, async () => {
        while (next < 10_000) await ledger.track(producer.send('faults.record', [next++, 0]));
      }),
    );
    expect(ledger.sent).toBe(10_000);
    await ledger.collect(40_000, returnedItsNumber);
    const runs = await scope.runs();
    const counts = ledger.tally(runs);
    expectSound(counts, ledger.lostIds());
    expect(counts.unexplained).toBe(0);
    for (const worker of workers) expect(runs.some((r) => r.pid === worker.pid)).toBe(true);
  }, 80_000);

  it('prefetch: a worker with concurrency 2 holds at most 2 unacked of 10 slow tasks, and 2 are seen', async () => {
    const scope = openScope('accept-prefetch');
    const producer = scope.producer();
    await Promise.all(
      // Far longer than the sampling below takes on a loaded machine (rabbitmqctl takes seconds
      // there): no task may finish while the counts are read; afterEach kills the worker.
      Array.from({ length: 10 }, (_, n) => producer.send('faults.record', [n, 60_000])),
    );
    await WorkerProcess.start(scope.workerEnv({ concurrency: 2, prefetchMultiplier: 1 }));
    await waitFor(async () => (await scope.runCount()) === 2, 'two tasks running');
    const samples: Array<{ ready: number; unacked: number }> = [];
    for (let i = 0; i < 3; i += 1) {
      samples.push(await queueCounts(scope.queue));
      await sleep(200);
    }
    expect(samples.every((s) => s.unacked <= 2)).toBe(true);
    expect(samples.some((s) => s.unacked === 2 && s.ready === 8)).toBe(true);
    expect(await scope.runCount()).toBe(2);
    const consumers = await rabbitmqctl('list_consumers', 'queue_name', 'prefetch_count');
    expect(consumers).toMatch(new RegExp(`${scope.queue}\\t2\\b`));
  }, 60_000);

  it('SIGKILL of a worker mid-task: the task is redelivered and completes on another worker', async () => {
    const scope = openScope('accept-kill');
    const producer = scope.producer();
    const settings = scope.workerEnv({ concurrency: 1 });
    const first = await WorkerProcess.start(settings);
    // Long enough that the kill surely lands while it runs, however late the waitFor sees it.
    const result = await producer.send<{ pid: number }>('faults.record', [1, 5_000]);
    await waitFor(
      async () => (await scope.runCount()) === 1,
      'the task running on the first worker',
    );
    // Killed before the second worker starts: starting a process can take longer than the task
    // on a loaded machine, and the kill must land while the task runs.
    await first.killNow();
    const second = await WorkerProcess.start(settings);
    await expect(result.get({ timeoutMs: 30_000 })).resolves.toEqual({ n: 1, pid: second.pid });
    const runs = await scope.runs();
    expect(runs).toEqual([
      { id: result.id, redelivered: false, pid: first.pid },
      { id: result.id, redelivered: true, pid: second.pid },
    ]);
  }, 60_000);

  it('each poison kind ends on the dead-letter queue with its reason; the worker keeps running and completes a valid task afterwards', async () => {
    const scope = openScope('accept-poison');
    const producer = scope.producer();
    const worker = await WorkerProcess.start(scope.workerEnv({ concurrency: 2 }));
    const id = (): string => randomUUID();
    const kinds: Array<[string, ReturnType<typeof validMessage>, RegExp]> = [
      [
        'not JSON',
        { ...validMessage(id(), 0), body: Buffer.from('this is not JSON') },
        /body is not valid JSON/,
      ],
      [
        'wrong content type',
        {
          ...validMessage(id(), 0),
          properties: { contentType: 'application/x-python-serialize', contentEncoding: 'binary' },
        },
        /content type 'application\/x-python-serialize' is not supported/,
      ],
      ['missing headers', { ...validMessage(id(), 0), headers: {} }, /no task headers/],
      [
        'unknown task',
        {
          ...validMessage(id(), 0),
          headers: { ...validHeaders(randomUUID()), task: 'faults.nope' },
        },
        /task 'faults.nope' is not registered/,
      ],
    ];
    const connection = await connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      kinds.forEach(([kind, message]) =>
        channel.sendToQueue(scope.queue, message.body, {
          ...message.properties,
          headers: { ...message.headers, 'x-kind': kind },
          deliveryMode: 2,
        }),
      );
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    const dead = deadLetterQueueName(scope.queue);
    await waitFor(
      async () => (await withRawChannel((ch) => ch.checkQueue(dead))).messageCount === kinds.length,
      'four dead letters',
    );
    const reasons = new Map<string, string>();
    await withRawChannel(async (ch) => {
      for (
        let m = await ch.get(dead, { noAck: true });
        m !== false;
        m = await ch.get(dead, { noAck: true })
      ) {
        reasons.set(
          String(m.properties.headers?.['x-kind']),
          String(m.properties.headers?.[DEAD_LETTER_REASON_HEADER]),
        );
      }
    });
    for (const [kind, , reason] of kinds)
      expect([kind, reasons.get(kind)]).toEqual([kind, expect.stringMatching(reason)]);
    expect(await queueCounts(scope.queue)).toEqual({ ready: 0, unacked: 0 });
    expect(worker.alive).toBe(true);
    const valid = await producer.send('faults.record', [7, 0]);
    await expect(valid.get({ timeoutMs: 10_000 })).resolves.toEqual({ n: 7, pid: worker.pid });
  }, 30_000);
});
