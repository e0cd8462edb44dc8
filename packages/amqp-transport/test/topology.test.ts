import { ConfigError, type Delivery } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import {
  queueName,
  rabbitmqctl,
  textMessage,
  withRawChannel,
  testTransport,
  useTestTransport,
} from '../../../test/support/amqp-transport';

const ctx = useTestTransport();
const { queues, namespace } = ctx;

function newQueue(label: string): string {
  const name = queueName(label);
  queues.push(name);
  return name;
}

/** `name -> arguments` as rabbitmqctl prints them. */
async function queueArguments(): Promise<Map<string, string>> {
  const out = await rabbitmqctl('list_queues', 'name', 'arguments');
  return new Map(
    out
      .split('\n')
      .map((line) => line.split('\t'))
      .filter((cols) => cols.length >= 2)
      .map(([name, args]) => [name!, args!]),
  );
}

describe('task queue topology', () => {
  it('declares a durable direct exchange and a durable queue of the same name, bound with that name', async () => {
    const q = newQueue('layout');
    await ctx.transport.declareQueue({ name: q });
    await withRawChannel(async (ch) => {
      await ch.checkExchange(q);
      await ch.checkQueue(q);
      await ch.checkQueue(`${q}.dead`);
    });
    const exchanges = await rabbitmqctl('list_exchanges', 'name', 'type', 'durable');
    expect(exchanges).toContain(`${q}\tdirect\ttrue`);
    const durable = await rabbitmqctl('list_queues', 'name', 'durable');
    expect(durable).toContain(`${q}\ttrue`);
    expect(durable).toContain(`${q}.dead\ttrue`);
    const bindings = await rabbitmqctl(
      'list_bindings',
      'source_name',
      'destination_name',
      'routing_key',
    );
    expect(bindings).toContain(`${q}\t${q}\t${q}\n`);
  });

  it('gives the main queue no arguments it was not asked for (no dead-letter exchange), so Celery can redeclare it', async () => {
    const q = newQueue('plain');
    await ctx.transport.declareQueue({ name: q });
    expect((await queueArguments()).get(q)).toBe('[]');
    // What Python Celery does on start: declare the queue durable, without arguments.
    await withRawChannel((ch) => ch.assertQueue(q, { durable: true }));
  });

  it('creates a priority queue with x-max-priority and a quorum queue with x-queue-type', async () => {
    const priority = newQueue('priority');
    const quorum = newQueue('quorum');
    await ctx.transport.declareQueue({ name: priority, maxPriority: 7 });
    await ctx.transport.declareQueue({ name: quorum, queueType: 'quorum' });
    const args = await queueArguments();
    expect(args.get(priority)).toMatch(/"x-max-priority",(signedint,)?7\}/);
    expect(args.get(quorum)).toMatch(/"x-queue-type",(longstr,)?(<<)?"quorum"/);
    expect(args.get(`${quorum}.dead`)).toMatch(/"x-queue-type",(longstr,)?(<<)?"quorum"/);
  });

  it('uses the transport-wide queueType when a declaration names none', async () => {
    const quorumTransport = testTransport({ delayNamespace: namespace, queueType: 'quorum' });
    try {
      const q = newQueue('default-quorum');
      await quorumTransport.declareQueue({ name: q });
      expect((await queueArguments()).get(q)).toContain('"x-queue-type"');
    } finally {
      await quorumTransport.close();
    }
  });

  it('refuses to redeclare a queue with a different maxPriority with a ConfigError naming the argument', async () => {
    const q = newQueue('inequivalent');
    await ctx.transport.declareQueue({ name: q, maxPriority: 5 });
    const error = await ctx.transport
      .declareQueue({ name: q, maxPriority: 10 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain("'x-max-priority'");
    expect((error as Error).message).toContain(q);
  });

  it('keeps working after a refused declaration', async () => {
    const q = newQueue('usable');
    await ctx.transport.declareQueue({ name: q, maxPriority: 5 });
    await expect(ctx.transport.declareQueue({ name: q })).rejects.toBeInstanceOf(ConfigError);
    await ctx.transport.publish(textMessage('still here'), { queue: q });
    const seen: Delivery[] = [];
    await ctx.transport.consume(q, (d) => seen.push(d), { prefetch: 1 });
    await waitFor(() => seen.length === 1, 'a delivery after the refusal');
    expect(seen[0]!.message.body.toString()).toBe('still here');
    await seen[0]!.ack();
  });
});
