import { randomUUID } from 'node:crypto';
import { ConnectionError, type Delivery } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import type { AmqpTransport } from '../src';
import { TcpProxy } from '../../../test/support/tcp-proxy';
import {
  AMQP_URL,
  RecordingErrors,
  delayNamespace,
  queueName,
  rabbitmqctl,
  readyCount,
  removeDelayNamespace,
  removeQueues,
  testTransport,
  takeAll,
  textMessage,
} from '../../../test/support/amqp-transport';

const namespace = delayNamespace();
const queues: string[] = [];
const transports: AmqpTransport[] = [];
let proxy: TcpProxy;

beforeEach(async () => {
  const target = new URL(AMQP_URL);
  proxy = new TcpProxy(target.hostname, Number(target.port || 5672));
  await proxy.start();
});
afterEach(async () => {
  proxy.unblock();
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await proxy.stop();
  await removeQueues(queues.splice(0));
});
afterAll(async () => {
  await removeDelayNamespace(namespace);
});

function throughProxy(options: ConstructorParameters<typeof AmqpTransport>[0] = {}): AmqpTransport {
  const transport = testTransport({
    url: proxy.rewrite(AMQP_URL),
    delayNamespace: namespace,
    ...options,
  });
  transports.push(transport);
  return transport;
}

async function declared(transport: AmqpTransport, label: string): Promise<string> {
  const name = queueName(label);
  queues.push(name);
  await transport.declareQueue({ name });
  return name;
}

/** Bodies on `queue`, taken off it. */
async function drain(queue: string): Promise<string[]> {
  return (await takeAll(queue)).map((m) => m.content.toString());
}

describe('publishing across a cut connection', () => {
  it('resolves or rejects every publish of a burst cut midway, and every resolved one is on the queue', async () => {
    const transport = throughProxy({ publishTimeoutMs: 5_000 });
    const q = await declared(transport, 'cut-burst');
    let resolved = 0;
    const outcomes = Array.from({ length: 3000 }, (_, i) =>
      transport.publish(textMessage(String(i)), { queue: q }).then(
        () => {
          resolved += 1;
          return { i, ok: true as const };
        },
        (error: unknown) => ({ i, ok: false as const, error }),
      ),
    );
    await waitFor(() => resolved >= 300, 'some confirms before the cut');
    proxy.cut();
    const results = await Promise.all(outcomes);
    const failures = results.filter((r) => !r.ok);
    for (const f of failures)
      expect((f as { error: unknown }).error).toBeInstanceOf(ConnectionError);
    const bodies = await drain(q);
    const onQueue = new Set(bodies);
    const lost = results.filter((r) => r.ok && !onQueue.has(String(r.i)));
    expect(lost).toEqual([]);
    expect(proxy.connections).toBeGreaterThan(1);
    console.log(
      `cut burst: ${results.length - failures.length} resolved, ${failures.length} rejected, ` +
        `${bodies.length} on the queue (${bodies.length - onQueue.size} duplicates)`,
    );
  }, 30_000);

  it('tells reconnect listeners of each connection that came back, and not of the first connect', async () => {
    const transport = throughProxy();
    const reconnected: string[] = [];
    const stop = transport.onReconnected((connection) => reconnected.push(connection));
    const q = await declared(transport, 'reconnect-notice');
    await transport.consume(q, () => undefined, { prefetch: 1 });
    expect(reconnected).toEqual([]);
    proxy.cut();
    await waitFor(
      () => reconnected.includes('consumer') && reconnected.includes('publisher'),
      'both connections to come back',
      10_000,
    );
    stop();
    const before = reconnected.length;
    proxy.cut();
    await transport.publish(textMessage('after'), { queue: q });
    expect(reconnected).toHaveLength(before);
  });

  it('rejects a publish with ConnectionError after publishTimeoutMs while the broker cannot be reached, and recovers after', async () => {
    // Reconnect attempts at most 100 ms apart: with the default backoff the next attempt after
    // the unblock could come later than the second publish's own 600 ms.
    const transport = throughProxy({ publishTimeoutMs: 600, reconnect: { maxDelayMs: 100 } });
    const q = await declared(transport, 'outage');
    proxy.block();
    const started = Date.now();
    const error = await transport
      .publish(textMessage('during'), { queue: q })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    proxy.unblock();
    await transport.publish(textMessage('after'), { queue: q });
    expect(await drain(q)).toEqual(['after']);
  });

  it('connects to the next URL when the first is down', async () => {
    const dead = new TcpProxy('127.0.0.1', 1);
    await dead.start();
    dead.block();
    try {
      const transport = testTransport({
        url: [dead.rewrite(AMQP_URL), AMQP_URL],
        delayNamespace: namespace,
      });
      transports.push(transport);
      const q = await declared(transport, 'cluster');
      await transport.publish(textMessage('via second'), { queue: q });
      expect(await readyCount(q)).toBe(1);
    } finally {
      await dead.stop();
    }
  });
});

describe('consuming across a cut connection', () => {
  it('resumes a consumer by itself after a cut; everything arrives and the unacked ones come back redelivered', async () => {
    const producer = testTransport({ delayNamespace: namespace });
    transports.push(producer);
    const q = await declared(producer, 'cut-consume');
    for (let i = 0; i < 20; i += 1) await producer.publish(textMessage(String(i)), { queue: q });
    const consumer = throughProxy();
    const acked = new Set<string>();
    const redelivered: string[] = [];
    let cut = false;
    let delivered = 0;
    await consumer.consume(
      q,
      (d) => {
        delivered += 1;
        const body = d.message.body.toString();
        if (d.redelivered) redelivered.push(body);
        // Until the cut, hold every delivery after the fifth so some are unacked when it comes.
        if (!cut && acked.size >= 5) return;
        void d.ack().then(() => acked.add(body));
      },
      { prefetch: 5 },
    );
    await waitFor(() => acked.size >= 5, 'five acks');
    // Prefetch 5 with five acked: the next five arrive and are held, unacked, for the cut.
    await waitFor(() => delivered >= 10, 'five more deliveries, held');
    cut = true;
    proxy.cut();
    await waitFor(() => acked.size === 20, 'all twenty acked after the resume', 15_000);
    expect(redelivered.length).toBeGreaterThan(0);
    expect(proxy.connections).toBeGreaterThan(1);
  }, 30_000);

  it('rejects acking a delivery whose channel died with ConnectionError; the broker redelivers it', async () => {
    const transport = throughProxy();
    const q = await declared(transport, 'dead-channel');
    await transport.publish(textMessage('held'), { queue: q });
    const seen: Delivery[] = [];
    await transport.consume(q, (d) => seen.push(d), { prefetch: 1 });
    await waitFor(() => seen.length === 1, 'delivery');
    proxy.cut();
    await waitFor(() => seen.length === 2, 'the redelivery on the resumed consumer', 10_000);
    await expect(seen[0]!.ack()).rejects.toBeInstanceOf(ConnectionError);
    await expect(seen[0]!.deadLetter('x')).rejects.toBeInstanceOf(ConnectionError);
    expect(seen[1]!.redelivered).toBe(true);
    await seen[1]!.ack();
  });
});

describe('connection identity and secrets', () => {
  it('names the publisher and consumer connections with host, pid and role', async () => {
    const name = `conveyor-test-${randomUUID()}`;
    const transport = testTransport({ delayNamespace: namespace, connectionName: name });
    transports.push(transport);
    const q = await declared(transport, 'named');
    await transport.consume(q, () => undefined, { prefetch: 1 });
    const out = await rabbitmqctl('list_connections', 'client_properties');
    const names = [...out.matchAll(/connection_name","([^"]*)"/g)]
      .map((m) => m[1]!)
      .filter((n) => n.startsWith(name));
    expect(names.sort()).toEqual([
      expect.stringMatching(new RegExp(`^${name} consumer \\(host .+, pid ${process.pid}\\)$`)),
      expect.stringMatching(new RegExp(`^${name} publisher \\(host .+, pid ${process.pid}\\)$`)),
    ]);
  });

  it('never shows the URL password in errors or log messages', async () => {
    const secret = `s3cret-${randomUUID()}`;
    proxy.block();
    const recorded = new RecordingErrors();
    const transport = testTransport({
      url: `amqp://guest:${secret}@127.0.0.1:${proxy.port}`,
      delayNamespace: namespace,
      connectTimeoutMs: 400,
      publishTimeoutMs: 400,
      onError: recorded.onError,
    });
    transports.push(transport);
    const errors = await Promise.all([
      transport.connect().catch((e: unknown) => e),
      transport.publish(textMessage('x'), { queue: 'whatever' }).catch((e: unknown) => e),
    ]);
    // A wrong password against the real broker: the refusal must not quote it either.
    const wrong = testTransport({
      url: AMQP_URL.replace(/:[^:@/]*@/, `:${secret}@`),
      delayNamespace: namespace,
      connectTimeoutMs: 1_000,
      onError: recorded.onError,
    });
    transports.push(wrong);
    errors.push(await wrong.connect().catch((e: unknown) => e));
    for (const error of errors) {
      expect(error).toBeInstanceOf(ConnectionError);
      expect(String((error as Error).message)).not.toContain(secret);
      expect((error as Error).message).toContain('***');
    }
    expect(recorded.messages.length).toBeGreaterThan(0);
    for (const message of recorded.messages) expect(message).not.toContain(secret);
  });

  it('still reports to the deprecated logger option, as warnings', async () => {
    proxy.block();
    const warnings: string[] = [];
    const emitWarning = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const transport = testTransport({
      url: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
      delayNamespace: namespace,
      connectTimeoutMs: 400,
      onError: undefined,
      logger: { warn: (message) => warnings.push(message) },
    });
    transports.push(transport);
    try {
      await expect(transport.connect()).rejects.toBeInstanceOf(ConnectionError);
      await waitFor(() => warnings.length > 0, 'a warning');
      expect(emitWarning).toHaveBeenCalledWith(
        expect.stringContaining('`logger` is deprecated'),
        expect.objectContaining({ type: 'DeprecationWarning' }),
      );
    } finally {
      emitWarning.mockRestore();
    }
  });
});
