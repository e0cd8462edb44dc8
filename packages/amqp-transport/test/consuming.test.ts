import { type Delivery } from '@conveyor/core';
import { ConfigError, DEAD_LETTER_REASON_HEADER } from '@conveyor/core/plugin';
import { sleep, waitFor } from '@conveyor/core/testing';
import {
  queueName,
  readyCount,
  textMessage,
  unacked,
  withRawChannel,
  useTestTransport,
} from '../../../test/support/amqp-transport';

const ctx = useTestTransport();
const { queues } = ctx;

async function declared(label: string): Promise<string> {
  const name = queueName(label);
  queues.push(name);
  await ctx.transport.declareQueue({ name });
  return name;
}

describe('prefetch', () => {
  it('never lets a consumer with prefetch 2 hold more than 2 unacknowledged messages, as the broker counts them', async () => {
    const q = await declared('prefetch');
    for (let i = 0; i < 6; i += 1)
      await ctx.transport.publish(textMessage(String(i)), { queue: q });
    const held: Delivery[] = [];
    let most = 0;
    await ctx.transport.consume(
      q,
      (d) => {
        held.push(d);
        most = Math.max(most, held.length);
      },
      { prefetch: 2 },
    );
    // Each round holds two deliveries unacked while the broker is asked (rabbitmqctl takes a
    // second or more): a third would arrive meanwhile if the prefetch were not applied.
    for (let round = 0; round < 3; round += 1) {
      await waitFor(() => held.length === 2, `two deliveries in round ${round}`);
      expect(await unacked(q)).toBe(2);
      expect(held).toHaveLength(2);
      await Promise.all(held.splice(0).map((d) => d.ack()));
    }
    await waitFor(async () => (await unacked(q)) === 0, 'the last acks');
    expect(most).toBe(2);
  }, 30_000);

  it("takes AMQP's largest prefetch-count, 65535, and refuses one above it at consume and setPrefetch, naming the queue and the value", async () => {
    const q = await declared('prefetch-bound');
    const refusal = (got: number): string =>
      `AmqpTransport, queue '${q}': \`prefetch\` must be an integer from 1 to 65535 (got ${got})`;
    const tooMany = ctx.transport.consume(q, () => undefined, { prefetch: 65_536 });
    await expect(tooMany).rejects.toBeInstanceOf(ConfigError);
    await expect(tooMany).rejects.toThrow(refusal(65_536));

    const seen: Delivery[] = [];
    const consumer = await ctx.transport.consume(q, (d) => seen.push(d), { prefetch: 65_535 });
    await expect(ctx.transport.setPrefetch(consumer, 65_536)).rejects.toThrow(refusal(65_536));
    await expect(ctx.transport.setPrefetch(consumer, 0)).rejects.toThrow(refusal(0));
    // The broker took basic.qos 65535: the consumer started, and it delivers.
    await ctx.transport.publish(textMessage('held'), { queue: q });
    await waitFor(() => seen.length === 1, 'the delivery');
    await seen[0]!.ack();
    await consumer.cancel();
  });
});

describe('settling', () => {
  it('puts a dead-lettered message on <queue>.dead with its reason, and removes it from the queue', async () => {
    const q = await declared('dead');
    await ctx.transport.publish(textMessage('poison', { task: 'tasks.bad', id: 't-1' }), {
      queue: q,
    });
    const seen: Delivery[] = [];
    await ctx.transport.consume(q, (d) => seen.push(d), { prefetch: 1 });
    await waitFor(() => seen.length === 1, 'delivery');
    await seen[0]!.deadLetter('no such task');
    const dead = await withRawChannel((ch) => ch.get(`${q}.dead`, { noAck: true }));
    if (dead === false) throw new Error('nothing on the dead-letter queue');
    expect(dead.content.toString()).toBe('poison');
    expect(dead.properties.headers).toMatchObject({
      [DEAD_LETTER_REASON_HEADER]: 'no such task',
      task: 'tasks.bad',
      id: 't-1',
    });
    await waitFor(async () => (await unacked(q)) === 0, 'the original acked');
    expect(await readyCount(q)).toBe(0);
  });

  it('gives a requeued message back to the queue (nack with requeue), not to the dead-letter queue', async () => {
    const q = await declared('requeue');
    await ctx.transport.publish(textMessage('again'), { queue: q });
    const seen: Delivery[] = [];
    const consumer = await ctx.transport.consume(q, (d) => seen.push(d), { prefetch: 1 });
    await waitFor(() => seen.length === 1, 'delivery');
    await consumer.cancel();
    await seen[0]!.requeue();
    await waitFor(async () => (await readyCount(q)) === 1, 'the message back on its queue');
    expect(await readyCount(`${q}.dead`)).toBe(0);
  });

  it('returns a message that arrives after cancel to the queue instead of handing it over', async () => {
    const q = await declared('cancel');
    const seen: Delivery[] = [];
    const consumer = await ctx.transport.consume(q, (d) => seen.push(d), { prefetch: 5 });
    await consumer.cancel();
    await ctx.transport.publish(textMessage('after cancel'), { queue: q });
    await sleep(200);
    expect(seen).toHaveLength(0);
    expect(await readyCount(q)).toBe(1);
  });
});
