import { deadLetterQueueName, queueReport, UnroutableError, type Delivery } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { RABBITMQ_MANAGEMENT_URL } from '../../../test/support/services';
import {
  delayedIn,
  listQueues,
  queueName,
  testTransport,
  textMessage,
  useTestTransport,
} from '../../../test/support/amqp-transport';

const ctx = useTestTransport({ managementUrl: RABBITMQ_MANAGEMENT_URL });
const { queues, namespace } = ctx;

async function declared(label: string): Promise<string> {
  const name = queueName(label);
  queues.push(name);
  await ctx.transport.declareQueue({ name });
  return name;
}

describe('queue inspection (AMQP)', () => {
  it('reports backlog, consumers, unacked, dead letters and delayed messages as rabbitmqctl lists them', async () => {
    const q = await declared('inspect');
    for (let i = 0; i < 7; i += 1) await ctx.transport.publish(textMessage(`m${i}`), { queue: q });
    const due = Date.now() + 10 * 60_000;
    for (let i = 0; i < 4; i += 1) {
      await ctx.transport.publish(textMessage(`later${i}`), { queue: q, deliverAt: due });
    }
    // A consumer holding two messages (prefetch 2), of which it dead-letters none yet.
    const held: Delivery[] = [];
    const consumer = await ctx.transport.consume(q, (d) => held.push(d), { prefetch: 2 });
    await waitFor(() => held.length === 2, 'two deliveries', 5_000);
    await held[0]!.deadLetter('inspection test');
    await waitFor(() => held.length === 3, 'a third delivery', 5_000);
    // Now: 4 ready, 2 unacked, 1 dead letter, 4 delayed, 1 consumer.

    const rows = await listQueues();
    const report = await queueReport(ctx.transport, [q]);
    const { ready, unacked, consumers } = rows.get(q)!;
    expect(report.queues).toHaveLength(1);
    const row = report.queues[0]!;
    expect(row).toMatchObject({ name: q, exists: true, ready, consumers });
    expect([ready, unacked, consumers]).toEqual([4, 2, 1]);
    expect(row.dead).toBe(rows.get(deadLetterQueueName(q))!.ready);
    expect(row.dead).toBe(1);
    expect(report.delayed).toBe(delayedIn(rows, namespace));
    expect(report.delayed).toBe(4);
    // The management API samples (every 5 s by default): wait for it to catch up with the count.
    await waitFor(
      async () => (await ctx.transport.queueStats(q)).unacked === unacked,
      'the management API to report 2 unacked',
      15_000,
    );
    const withRates = await ctx.transport.queueStats(q);
    expect(withRates.rates).toEqual({
      published: expect.any(Number),
      delivered: expect.any(Number),
      acked: expect.any(Number),
    });
    await consumer.cancel();
    for (const d of held.slice(1)) await d.ack();
  });

  it('reports a queue that does not exist as absent with zero counts, declaring nothing', async () => {
    const missing = queueName('missing');
    const report = await queueReport(ctx.transport, [missing]);
    expect(report.queues[0]).toEqual({
      name: missing,
      exists: false,
      ready: 0,
      consumers: 0,
      dead: 0,
    });
    expect((await listQueues()).has(missing)).toBe(false);
  });

  it('purges only the queue it names: ready messages go, its dead letters and delayed ones stay', async () => {
    const q = await declared('purge');
    const other = await declared('purge-other');
    for (let i = 0; i < 5; i += 1) await ctx.transport.publish(textMessage('x'), { queue: q });
    await ctx.transport.publish(textMessage('y'), { queue: other });
    await ctx.transport.publish(textMessage('z'), { queue: q, deliverAt: Date.now() + 600_000 });
    const taken: Delivery[] = [];
    const consumer = await ctx.transport.consume(q, (d) => taken.push(d), { prefetch: 1 });
    await waitFor(() => taken.length === 1, 'one delivery', 5_000);
    await consumer.cancel();
    await taken[0]!.deadLetter('kept');
    const before = await listQueues();
    expect(before.get(q)!.ready).toBe(4);

    expect(await ctx.transport.purgeQueue(q)).toBe(4);

    const after = await listQueues();
    expect(after.get(q)!.ready).toBe(0);
    expect(after.get(other)!.ready).toBe(1);
    expect(after.get(deadLetterQueueName(q))!.ready).toBe(1);
    expect(delayedIn(after, namespace)).toBe(delayedIn(before, namespace));
  });

  it('refuses to count or purge a queue that does not exist with UnroutableError', async () => {
    await expect(ctx.transport.queueStats(queueName('absent'))).rejects.toThrow(UnroutableError);
    await expect(ctx.transport.purgeQueue(queueName('absent'))).rejects.toThrow(UnroutableError);
  });

  it('without a reachable management API reports what AMQP tells: no unacked, no rates', async () => {
    const q = await declared('no-management');
    await ctx.transport.publish(textMessage('x'), { queue: q });
    for (const managementUrl of [false as const, 'http://guest:guest@127.0.0.1:1']) {
      const transport = testTransport({ delayNamespace: namespace, managementUrl });
      try {
        await expect(transport.queueStats(q)).resolves.toEqual({ ready: 1, consumers: 0 });
      } finally {
        await transport.close();
      }
    }
  });
});
