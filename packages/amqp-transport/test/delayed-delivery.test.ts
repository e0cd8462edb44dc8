import { type Delivery } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { DelayTopology, MAX_DELAY_MS } from '../src/delayed-delivery';
import {
  queueName,
  readyCount,
  textMessage,
  withRawChannel,
  useTestTransport,
} from '../../../test/support/amqp-transport';

const ctx = useTestTransport();
const { queues, namespace } = ctx;
const delay = new DelayTopology(namespace);

async function declared(label: string, name = queueName(label)): Promise<string> {
  queues.push(name);
  await ctx.transport.declareQueue({ name });
  return name;
}

async function levelCounts(): Promise<number[]> {
  return withRawChannel(async (ch) => {
    const counts: number[] = [];
    for (let level = 0; level < 32; level += 1) {
      counts.push((await ch.checkQueue(delay.levelName(level))).messageCount);
    }
    return counts;
  });
}

describe('delay routing', () => {
  it('encodes the delay bits, most significant first, then the queue, and enters at the highest set bit', () => {
    const route = delay.route(2000, 'q.a');
    expect(route.exchange).toBe(delay.levelName(10));
    const bits = '0.'.repeat(21) + '1.1.1.1.1.0.1.0.0.0.0.';
    expect(route.routingKey).toBe(`${bits}q.a`);
  });
});

describe('delayed delivery', () => {
  it('delivers a 2 s countdown after 2 s, within a second of its due time', async () => {
    const q = await declared('countdown');
    const due = Date.now() + 2000;
    await ctx.transport.publish(textMessage('later'), { queue: q, deliverAt: due });
    const seen: Array<{ delivery: Delivery; at: number }> = [];
    await ctx.transport.consume(q, (d) => seen.push({ delivery: d, at: Date.now() }), {
      prefetch: 1,
    });
    await waitFor(() => seen.length === 1, 'the delayed message', 5_000);
    expect(seen[0]!.at).toBeGreaterThanOrEqual(due - 5);
    expect(seen[0]!.at).toBeLessThan(due + 1000);
    const { message } = seen[0]!.delivery;
    expect(message.body.toString()).toBe('later');
    // The delay plumbing's dead-lettering headers are not the task's business.
    expect(message.headers['x-death']).toBeUndefined();
    await seen[0]!.delivery.ack();
  });

  it('delivers at once when deliverAt is in the past', async () => {
    const q = await declared('past');
    await ctx.transport.publish(textMessage('now'), { queue: q, deliverAt: Date.now() - 1000 });
    expect(await readyCount(q)).toBe(1);
  });

  it('keeps a 30-day delay waiting in the level of its highest set bit (31)', async () => {
    const q = await declared('thirty-days');
    await ctx.transport.publish(textMessage('month'), {
      queue: q,
      deliverAt: Date.now() + 30 * 24 * 3600 * 1000,
    });
    const counts = await levelCounts();
    expect(counts[31]).toBe(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
    await withRawChannel((ch) => ch.purgeQueue(delay.levelName(31)));
  });

  it('holds a delay beyond the reach of the levels as long as they reach (all levels, from 31)', async () => {
    const q = await declared('sixty-days');
    const sixtyDays = 60 * 24 * 3600 * 1000;
    await ctx.transport.publish(textMessage('too far'), {
      queue: q,
      deliverAt: Date.now() + sixtyDays,
    });
    expect(delay.route(MAX_DELAY_MS, q).exchange).toBe(delay.levelName(31));
    const counts = await levelCounts();
    expect(counts[31]).toBe(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1);
    await withRawChannel((ch) => ch.purgeQueue(delay.levelName(31)));
  });

  it('delivers a delayed message only to its own queue when another queue name is a dotted suffix of it', async () => {
    const short = await declared('short');
    const long = await declared('long', `prefix.${short}`);
    await ctx.transport.publish(textMessage('for long'), {
      queue: long,
      deliverAt: Date.now() + 30,
    });
    await ctx.transport.publish(textMessage('for short'), {
      queue: short,
      deliverAt: Date.now() + 30,
    });
    await waitFor(
      async () => (await readyCount(long)) === 1 && (await readyCount(short)) === 1,
      'both delivered',
    );
    const got = await withRawChannel(async (ch) => [
      await ch.get(long, { noAck: true }),
      await ch.get(short, { noAck: true }),
    ]);
    expect(got.map((m) => (m ? m.content.toString() : null))).toEqual(['for long', 'for short']);
  });

  it('keeps 1,000 delayed messages in the broker while a prefetch-1 consumer goes on receiving immediate ones', async () => {
    const q = await declared('many');
    const now = Date.now();
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        ctx.transport.publish(textMessage(`delayed ${i}`), {
          queue: q,
          deliverAt: now + 60_000 + i * 1000,
        }),
      ),
    );
    const seen: string[] = [];
    await ctx.transport.consume(
      q,
      (d) => {
        seen.push(d.message.body.toString());
        void d.ack();
      },
      { prefetch: 1 },
    );
    for (let i = 0; i < 20; i += 1)
      await ctx.transport.publish(textMessage(`now ${i}`), { queue: q });
    await waitFor(() => seen.length === 20, 'the immediate messages');
    expect(seen.every((body) => body.startsWith('now'))).toBe(true);
    const counts = await levelCounts();
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    await withRawChannel(async (ch) => {
      for (let level = 0; level < 32; level += 1) await ch.purgeQueue(delay.levelName(level));
    });
  });

  it('binds a queue declared by someone else for delayed delivery on first use', async () => {
    const q = queueName('foreign');
    queues.push(q);
    await withRawChannel(async (ch) => {
      await ch.assertExchange(q, 'direct', { durable: true });
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, q, q);
    });
    await ctx.transport.publish(textMessage('x'), { queue: q, deliverAt: Date.now() + 20 });
    await waitFor(async () => (await readyCount(q)) === 1, 'the delayed message');
  });
});
