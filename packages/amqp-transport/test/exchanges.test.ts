import { ConnectionError, type TransportMessage } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { AmqpTransport } from '../src';
import {
  createVhost,
  rabbitmqctl,
  RecordingErrors,
  type TestVhost,
} from '../../../test/support/amqp-transport';

/** Exchanges, transient publishing and subscriptions with queue arguments, in a vhost of this file. */
let vhost: TestVhost;
const transports: AmqpTransport[] = [];

function transport(): AmqpTransport {
  const t = new AmqpTransport({ url: vhost.url, onError: new RecordingErrors().onError });
  transports.push(t);
  return t;
}

function text(body: string): TransportMessage {
  return {
    headers: { hostname: 'h' },
    properties: { contentType: 'text/plain' },
    body: Buffer.from(body),
  };
}

beforeAll(async () => {
  vhost = await createVhost('exchanges');
});

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()));
  await vhost.remove();
});

describe('exchanges capability on RabbitMQ', () => {
  it('declares celeryev as kombu does (durable topic), so a redeclaration by either side is accepted', async () => {
    const t = transport();
    await t.declareExchange({ name: 'celeryev', type: 'topic', durable: true });
    await t.declareExchange({ name: 'reply.celery.pidbox', type: 'direct', durable: false });
    const listed = await rabbitmqctl(
      'list_exchanges',
      '-p',
      vhost.name,
      'name',
      'type',
      'durable',
      'auto_delete',
    );
    expect(listed).toContain('celeryev\ttopic\ttrue\tfalse');
    expect(listed).toContain('reply.celery.pidbox\tdirect\tfalse\tfalse');
  });

  it('routes transient messages by topic to subscriptions, into a named queue with TTL and expiry', async () => {
    const publisher = transport();
    const subscriber = transport();
    await publisher.declareExchange({ name: 'celeryev', type: 'topic', durable: true });
    const tasks: string[] = [];
    const queue = 'celeryev.test-receiver';
    await subscriber.declareExchange({ name: 'celeryev', type: 'topic', durable: true });
    const consumer = await subscriber.subscribeExchange(
      'celeryev',
      'task.#',
      (m) => tasks.push(m.body.toString()),
      { queue, messageTtlMs: 5_000, expiresMs: 60_000 },
    );
    const queues = await rabbitmqctl(
      'list_queues',
      '-p',
      vhost.name,
      'name',
      'durable',
      'auto_delete',
      'arguments',
    );
    const line = queues.split('\n').find((l) => l.startsWith(`${queue}\t`))!;
    expect(line).toMatch(/\tfalse\ttrue\t/);
    expect(line).toContain('x-message-ttl');
    expect(line).toContain('5000');
    expect(line).toContain('x-expires');
    expect(line).toContain('60000');

    await publisher.publishToExchange('celeryev', 'worker.heartbeat', text('hb'));
    await publisher.publishToExchange('celeryev', 'task.succeeded', text('ok'));
    await waitFor(() => tasks.length === 1, 'the task event');
    expect(tasks).toEqual(['ok']);
    await consumer.cancel();
  });

  it('drops (rejects at once) instead of waiting when the exchange is unknown or the connection is closed', async () => {
    const t = transport();
    await expect(t.publishToExchange('never-declared', 'x', text('x'))).rejects.toThrow(
      ConnectionError,
    );
    await t.declareExchange({ name: 'celeryev', type: 'topic', durable: true });
    await t.publishToExchange('celeryev', 'x', text('x'));
    await t.close();
    // A new session: the channel is not open yet, so the message is dropped, not queued.
    await expect(t.publishToExchange('celeryev', 'x', text('x'))).rejects.toThrow(ConnectionError);
  });

  it('changes a consumer prefetch at run time', async () => {
    const t = transport();
    const queue = `prefetch-${Date.now()}`;
    await t.declareQueue({ name: queue });
    const held: Array<() => Promise<void>> = [];
    const consumer = await t.consume(queue, (d) => held.push(() => d.ack()), { prefetch: 1 });
    for (let i = 0; i < 5; i += 1) await t.publish(text(String(i)), { queue });
    await waitFor(() => held.length === 1, 'one delivery');
    await t.setPrefetch(consumer, 3);
    // The consumer starts again under the new limit; the one it held counts apart until acked.
    await waitFor(() => held.length >= 3, 'three deliveries');
    await Promise.all(held.map((ack) => ack()));
    await consumer.cancel();
  });
});
