import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { waitFor } from '@conveyor/core/testing';
import { AckCoalescer, type TrackedDelivery } from '../src/ack-coalescer';
import { AMQP_URL, queueName, readyCount, removeQueues, unacked } from './support/broker';

/** The acks the coalescer wrote: [delivery tag, multiple]. */
type AckFrame = [number, boolean];

let connection: ChannelModel;
let channel: Channel;
let queue: string;
let frames: AckFrame[];
let received: ConsumeMessage[];

beforeEach(async () => {
  connection = await connect(AMQP_URL);
  connection.on('error', () => undefined);
  channel = await connection.createChannel();
  channel.on('error', () => undefined);
  queue = queueName('acks');
  await channel.assertQueue(queue, { durable: false });
  // Records what goes on the wire and sends it: the broker decides what it means.
  frames = [];
  const write = channel.ack.bind(channel);
  channel.ack = (message, allUpTo) => {
    frames.push([message.fields.deliveryTag, allUpTo === true]);
    write(message, allUpTo);
  };
  received = [];
});

afterEach(async () => {
  await connection.close().catch(() => undefined);
  await removeQueues([queue]);
});

/** Publishes `bodies`, consumes them all with one prefetch window, and tracks each. */
async function deliver(coalescer: AckCoalescer, ...bodies: string[]): Promise<TrackedDelivery[]> {
  for (const body of bodies) channel.sendToQueue(queue, Buffer.from(body));
  const tracked: TrackedDelivery[] = [];
  await channel.prefetch(bodies.length + 1);
  await channel.consume(queue, (message) => {
    if (!message) return;
    received.push(message);
    tracked.push(coalescer.track(message));
  });
  await waitFor(() => tracked.length === bodies.length, 'all deliveries');
  return tracked;
}

describe('AckCoalescer on a real channel', () => {
  it('acks a gapless run of completions with one multiple ack, and the broker holds none of them', async () => {
    const coalescer = new AckCoalescer(channel);
    const tracked = await deliver(coalescer, ...Array.from({ length: 10 }, (_, i) => `m${i}`));
    for (const entry of tracked) coalescer.ack(entry);
    await waitFor(async () => (await unacked(queue)) === 0, 'the broker to drop all ten');
    expect(frames).toEqual([[received[9]!.fields.deliveryTag, true]]);
  });

  it('acks completions behind a held delivery one by one, so the held one holds back no other', async () => {
    const coalescer = new AckCoalescer(channel);
    const tracked = await deliver(coalescer, 'a', 'b', 'c', 'd', 'e');
    const tag = (i: number): number => received[i]!.fields.deliveryTag;
    for (const i of [0, 1, 3, 4]) coalescer.ack(tracked[i]!);
    await waitFor(
      async () => (await unacked(queue)) === 1,
      'only the held delivery to stay unacked',
    );
    expect(frames).toEqual([
      [tag(1), true],
      [tag(3), false],
      [tag(4), false],
    ]);
    coalescer.ack(tracked[2]!);
    await waitFor(async () => (await unacked(queue)) === 0, 'the last ack');
    expect(frames[3]).toEqual([tag(2), true]);
  });

  it('never lets a multiple ack cover a delivery requeued in the same turn', async () => {
    const coalescer = new AckCoalescer(channel);
    const tracked = await deliver(coalescer, 'first', 'requeued', 'third');
    coalescer.ack(tracked[0]!);
    coalescer.requeue(tracked[1]!);
    coalescer.ack(tracked[2]!);
    await waitFor(() => received.length === 4, 'the requeued message to come back');
    const again = received[3]!;
    expect(again.content.toString()).toBe('requeued');
    expect(again.fields.redelivered).toBe(true);
    expect(frames).toEqual([[received[2]!.fields.deliveryTag, true]]);
    await waitFor(async () => (await unacked(queue)) === 1, 'only the redelivery to be held');
    expect(await readyCount(queue)).toBe(0);
  });

  it('writes before a close and drops its acks on a channel that is gone, without throwing', async () => {
    const coalescer = new AckCoalescer(channel);
    const tracked = await deliver(coalescer, 'x', 'y');
    coalescer.ack(tracked[0]!);
    coalescer.flush();
    expect(frames).toEqual([[received[0]!.fields.deliveryTag, true]]);
    await channel.close();
    coalescer.ack(tracked[1]!);
    await new Promise((resolve) => setImmediate(resolve));
    expect(frames).toHaveLength(2);
    // The second ack met a closed channel: the broker took 'y' back, and nothing was thrown.
    await waitFor(async () => (await readyCount(queue)) === 1, "'y' back in the queue");
  });
});
