import { randomUUID } from 'node:crypto';
import {
  capabilitiesOf,
  ConfigError,
  DEAD_LETTER_REASON_HEADER,
  deadLetterQueueName,
  TRANSPORT_CAPABILITIES,
  UnroutableError,
  type Consumer,
  type Delivery,
  type Transport,
  type TransportCapability,
  type TransportMessage,
} from '@conveyor/core/plugin';
import {
  exchangesCases,
  prefetchCases,
  queueAccessCases,
  queueAdminCases,
  type TransportCaseKit,
} from './capability-cases';
import { sleep, waitFor } from './wait-for';

/** What a transport implementation gives the conformance suite. */
export interface TransportFixture {
  /**
   * A new transport. Every call returns one with its own connection to the same broker, so the
   * suite can model a second process.
   */
  create(): Transport | Promise<Transport>;
  /**
   * Deletes the named task queues and everything the transport declared for them, and any
   * broadcast exchange of the same name.
   */
  removeQueues(names: string[]): Promise<void>;
  /** Deletes exchanges the `exchanges` cases declared (where the broker keeps them). */
  removeExchanges?(names: string[]): Promise<void>;
}

/**
 * Registers the behaviour every {@link Transport} must have. Call it inside a test file with a
 * fixture for your implementation; it uses fresh uuid-named queues and removes them afterwards.
 * `capabilities` lists the optional capabilities the transport has: their cases run too, and a
 * test fails when the list and the transport's members disagree.
 */
export function describeTransportConformance(
  label: string,
  makeFixture: () => TransportFixture,
  options: { capabilities?: readonly TransportCapability[] } = {},
): void {
  const capabilities = options.capabilities ?? [];
  describe(`Transport conformance: ${label}`, () => {
    let fixture: TransportFixture;
    const transports: Transport[] = [];
    const queues: string[] = [];

    const open = async (): Promise<Transport> => {
      const transport = await fixture.create();
      transports.push(transport);
      return transport;
    };
    const newQueue = async (transport: Transport, maxPriority?: number): Promise<string> => {
      const name = `conformance-${randomUUID()}`;
      queues.push(name);
      await transport.declareQueue({ name, maxPriority });
      return name;
    };
    const collect = async (
      transport: Transport,
      queue: string,
      prefetch = 10,
    ): Promise<{ deliveries: Delivery[]; consumer: Consumer }> => {
      const deliveries: Delivery[] = [];
      const consumer = await transport.consume(queue, (d) => deliveries.push(d), { prefetch });
      return { deliveries, consumer };
    };

    beforeAll(() => {
      fixture = makeFixture();
    });

    it('has exactly the optional capabilities its fixture lists', async () => {
      const t = await open();
      expect(capabilitiesOf(t)).toEqual(
        Object.keys(TRANSPORT_CAPABILITIES).filter((c) =>
          capabilities.includes(c as TransportCapability),
        ),
      );
    });
    const exchanges: string[] = [];
    const kit: TransportCaseKit = {
      open,
      newQueue: (t) => newQueue(t),
      collect,
      message,
      newExchange: () => {
        const name = `conformance-x-${randomUUID()}`;
        exchanges.push(name);
        return name;
      },
    };
    if (capabilities.includes('queueAdmin')) queueAdminCases(kit);
    if (capabilities.includes('exchanges')) exchangesCases(kit);
    if (capabilities.includes('prefetch')) prefetchCases(kit);
    afterEach(async () => {
      if (exchanges.length > 0) await fixture.removeExchanges?.(exchanges.splice(0));
    });
    if (capabilities.includes('queueAccess')) queueAccessCases(kit);
    afterEach(async () => {
      await Promise.all(transports.splice(0).map((t) => t.close()));
      if (queues.length > 0) await fixture.removeQueues(queues.splice(0));
    });

    it('delivers the body, headers and properties as published', async () => {
      const t = await open();
      const q = await newQueue(t);
      const sent = message('hello', {
        task: 'tasks.add',
        id: 'id-1',
        retries: 2,
        timelimit: [null, 3],
        nested: { a: [1, 'two', null] },
        ignore_result: false,
      });
      sent.properties = {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        correlationId: 'id-1',
        replyTo: 'reply-here',
        deliveryMode: 2,
      };
      await t.publish(sent, { queue: q });
      const { deliveries } = await collect(t, q);
      await waitFor(() => deliveries.length === 1, 'one delivery');
      const got = deliveries[0]!;
      expect(got.queue).toBe(q);
      expect(got.redelivered).toBe(false);
      expect(got.message.body.toString()).toBe('hello');
      expect(got.message.headers).toMatchObject(sent.headers);
      expect(got.message.properties).toMatchObject({
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        correlationId: 'id-1',
        replyTo: 'reply-here',
      });
      await got.ack();
    });

    it('declares a queue again without error', async () => {
      const t = await open();
      const q = await newQueue(t);
      await expect(t.declareQueue({ name: q })).resolves.toBeUndefined();
    });

    it('rejects a publish to a queue that was never declared with UnroutableError', async () => {
      const t = await open();
      const name = `conformance-missing-${randomUUID()}`;
      queues.push(name);
      await expect(t.publish(message('x'), { queue: name })).rejects.toBeInstanceOf(
        UnroutableError,
      );
    });

    it('delivers in publish order to one consumer', async () => {
      const t = await open();
      const q = await newQueue(t);
      for (let i = 0; i < 20; i += 1) await t.publish(message(String(i)), { queue: q });
      const seen: string[] = [];
      await t.consume(
        q,
        (d) => {
          seen.push(d.message.body.toString());
          void d.ack();
        },
        { prefetch: 1 },
      );
      await waitFor(() => seen.length === 20, '20 deliveries');
      expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    });

    it('holds no more unsettled deliveries than the prefetch', async () => {
      const t = await open();
      const q = await newQueue(t);
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => t.publish(message(String(i)), { queue: q })),
      );
      const { deliveries } = await collect(t, q, 3);
      await waitFor(() => deliveries.length === 3, 'three deliveries');
      await sleep(200);
      expect(deliveries).toHaveLength(3);
      await deliveries[0]!.ack();
      await waitFor(() => deliveries.length === 4, 'a fourth delivery after one ack');
      await sleep(100);
      expect(deliveries).toHaveLength(4);
      for (const d of deliveries.slice(1)) await d.ack();
    });

    it("refuses a prefetch that breaks the kit's PREFETCH_RULE with a ConfigError naming it", async () => {
      const t = await open();
      const q = await newQueue(t);
      for (const prefetch of [0, -1, 1.5, Number.NaN]) {
        const refused = t.consume(q, () => undefined, { prefetch });
        await expect(refused).rejects.toBeInstanceOf(ConfigError);
        await expect(refused).rejects.toThrow(/`prefetch` must be an integer from 1/);
      }
      // Nothing was left consuming: a message published now goes to a consumer started after.
      await t.publish(message('after'), { queue: q });
      const { deliveries } = await collect(t, q, 1);
      await waitFor(() => deliveries.length === 1, 'the delivery');
      expect(deliveries[0]!.message.body.toString()).toBe('after');
      await deliveries[0]!.ack();
    });

    it('redelivers a requeued message, marked redelivered', async () => {
      const t = await open();
      const q = await newQueue(t);
      await t.publish(message('again'), { queue: q });
      const { deliveries } = await collect(t, q, 1);
      await waitFor(() => deliveries.length === 1, 'first delivery');
      await deliveries[0]!.requeue();
      await waitFor(() => deliveries.length === 2, 'redelivery');
      expect(deliveries[1]!.redelivered).toBe(true);
      expect(deliveries[1]!.message.body.toString()).toBe('again');
      await deliveries[1]!.ack();
    });

    it('does not deliver an acked message again, to this or another connection', async () => {
      const t = await open();
      const q = await newQueue(t);
      await t.publish(message('once'), { queue: q });
      const first = await collect(t, q);
      await waitFor(() => first.deliveries.length === 1, 'delivery');
      await first.deliveries[0]!.ack();
      await first.consumer.cancel();
      await t.close();
      const other = await open();
      const second = await collect(other, q);
      await sleep(300);
      expect(second.deliveries).toHaveLength(0);
    });

    it('moves a dead-lettered message to <queue>.dead with the reason, and never redelivers it', async () => {
      const t = await open();
      const q = await newQueue(t);
      await t.publish(message('poison', { task: 'x' }), { queue: q });
      const main = await collect(t, q);
      await waitFor(() => main.deliveries.length === 1, 'delivery');
      await main.deliveries[0]!.deadLetter('task x is not registered');
      const dead = await collect(t, deadLetterQueueName(q));
      await waitFor(() => dead.deliveries.length === 1, 'dead letter');
      const got = dead.deliveries[0]!.message;
      expect(got.body.toString()).toBe('poison');
      expect(got.headers[DEAD_LETTER_REASON_HEADER]).toBe('task x is not registered');
      expect(got.headers.task).toBe('x');
      await dead.deliveries[0]!.ack();
      await sleep(200);
      expect(main.deliveries).toHaveLength(1);
    });

    it('returns unsettled deliveries to the queue when their connection closes', async () => {
      const a = await open();
      const q = await newQueue(a);
      await a.publish(message('m1'), { queue: q });
      await a.publish(message('m2'), { queue: q });
      const first = await collect(a, q, 10);
      await waitFor(() => first.deliveries.length === 2, 'two deliveries');
      await first.deliveries[0]!.ack();
      await a.close();
      const b = await open();
      const second = await collect(b, q);
      await waitFor(() => second.deliveries.length === 1, 'the unacked one again');
      expect(second.deliveries[0]!.message.body.toString()).toBe('m2');
      expect(second.deliveries[0]!.redelivered).toBe(true);
      await second.deliveries[0]!.ack();
    });

    it('stops new deliveries on cancel but lets held ones be acked', async () => {
      const t = await open();
      const q = await newQueue(t);
      await t.publish(message('held'), { queue: q });
      const { deliveries, consumer } = await collect(t, q, 1);
      await waitFor(() => deliveries.length === 1, 'delivery');
      await consumer.cancel();
      await t.publish(message('later'), { queue: q });
      await sleep(200);
      expect(deliveries).toHaveLength(1);
      await deliveries[0]!.ack();
      const again = await collect(t, q);
      await waitFor(() => again.deliveries.length === 1, 'the later one on a new consumer');
      expect(again.deliveries[0]!.message.body.toString()).toBe('later');
      await again.deliveries[0]!.ack();
    });

    it('hands over no delivery once cancel() is called, even before it resolves, and loses none', async () => {
      const t = await open();
      const q = await newQueue(t);
      for (let i = 0; i < 20; i += 1) await t.publish(message(`m${i}`), { queue: q });
      const held: Delivery[] = [];
      let afterCancel = 0;
      let cancelling: Promise<void> | undefined;
      // Set once consume() resolves; the handler may run before that.
      const handle: { consumer?: Consumer } = {};
      // Prefetch 10: more deliveries are on their way when the first one cancels the consumer
      // (or, when they came before consume() resolved, as soon as it has).
      handle.consumer = await t.consume(
        q,
        (d) => {
          if (cancelling) afterCancel += 1;
          held.push(d);
          if (handle.consumer) cancelling ??= handle.consumer.cancel();
        },
        { prefetch: 10 },
      );
      if (held.length > 0) cancelling ??= handle.consumer.cancel();
      await waitFor(() => cancelling !== undefined, 'the first delivery');
      await cancelling;
      await sleep(200);
      expect(afterCancel).toBe(0);
      for (const d of held) await d.ack();
      const rest = await collect(t, q, 20);
      await waitFor(
        () => rest.deliveries.length === 20 - held.length,
        'the rest, on a new consumer',
      );
      for (const d of rest.deliveries) await d.ack();
    });

    it('rejects settling a delivery twice', async () => {
      const t = await open();
      const q = await newQueue(t);
      await t.publish(message('twice'), { queue: q });
      const { deliveries } = await collect(t, q);
      await waitFor(() => deliveries.length === 1, 'delivery');
      await deliveries[0]!.ack();
      await expect(deliveries[0]!.ack()).rejects.toThrow(/settled/);
    });

    it('holds a message with a future deliverAt until then, outside the prefetch window', async () => {
      const t = await open();
      const q = await newQueue(t);
      const publishedAt = Date.now();
      await t.publish(message('later'), { queue: q, deliverAt: publishedAt + 1500 });
      await t.publish(message('now'), { queue: q });
      const seen: Array<{ body: string; at: number }> = [];
      await t.consume(
        q,
        (d) => {
          seen.push({ body: d.message.body.toString(), at: Date.now() });
          void d.ack();
        },
        { prefetch: 1 },
      );
      await waitFor(() => seen.length === 2, 'both messages', 10_000);
      expect(seen.map((s) => s.body)).toEqual(['now', 'later']);
      expect(seen[1]!.at).toBeGreaterThanOrEqual(publishedAt + 1500 - 5);
      // Released within a second of its due time, as the transport contract requires.
      expect(seen[1]!.at).toBeLessThan(publishedAt + 1500 + 1000);
    });

    it('delivers at once when deliverAt is in the past', async () => {
      const t = await open();
      const q = await newQueue(t);
      await t.publish(message('past'), { queue: q, deliverAt: Date.now() - 60_000 });
      const { deliveries } = await collect(t, q);
      await waitFor(() => deliveries.length === 1, 'delivery', 2_000);
      await deliveries[0]!.ack();
    });

    it('delivers higher priorities first on a priority queue', async () => {
      const t = await open();
      const q = await newQueue(t, 10);
      const publish = (body: string, priority: number) =>
        t.publish(
          { ...message(body), properties: { ...message(body).properties, priority } },
          { queue: q },
        );
      await publish('low', 1);
      await publish('mid', 5);
      await publish('high', 9);
      const seen: string[] = [];
      await t.consume(
        q,
        (d) => {
          seen.push(d.message.body.toString());
          void d.ack();
        },
        { prefetch: 1 },
      );
      await waitFor(() => seen.length === 3, 'three deliveries');
      expect(seen).toEqual(['high', 'mid', 'low']);
    });

    it('delivers a broadcast to every subscriber, on any connection', async () => {
      const a = await open();
      const b = await open();
      const exchange = `conformance-fanout-${randomUUID()}`;
      queues.push(exchange);
      const gotA: string[] = [];
      const gotB: string[] = [];
      await a.subscribeBroadcast(exchange, (m) => gotA.push(m.body.toString()));
      const sub = await b.subscribeBroadcast(exchange, (m) => gotB.push(m.body.toString()));
      const sender = await open();
      await sender.broadcast(exchange, message('revoke 1', { clock: 1 }));
      await waitFor(() => gotA.length === 1 && gotB.length === 1, 'both subscribers');
      expect(gotA).toEqual(['revoke 1']);
      await sub.cancel();
      await sender.broadcast(exchange, message('revoke 2'));
      await waitFor(() => gotA.length === 2, 'the remaining subscriber');
      await sleep(200);
      expect(gotB).toEqual(['revoke 1']);
    });

    it('accepts a broadcast that nobody listens to', async () => {
      const t = await open();
      const exchange = `conformance-fanout-${randomUUID()}`;
      queues.push(exchange);
      await expect(t.broadcast(exchange, message('into the void'))).resolves.toBeUndefined();
    });

    it('delivers each of many concurrent publishes exactly once across two consumers', async () => {
      const producer = await open();
      const q = await newQueue(producer);
      const n = 500;
      await Promise.all(
        Array.from({ length: n }, (_, i) => producer.publish(message(String(i)), { queue: q })),
      );
      const counts = new Map<string, number>();
      const handler = (d: Delivery): void => {
        const body = d.message.body.toString();
        counts.set(body, (counts.get(body) ?? 0) + 1);
        void d.ack();
      };
      const c1 = await open();
      const c2 = await open();
      await c1.consume(q, handler, { prefetch: 20 });
      await c2.consume(q, handler, { prefetch: 20 });
      await waitFor(() => counts.size === n, `${n} distinct deliveries`, 20_000);
      await sleep(200);
      expect([...counts.values()].every((c) => c === 1)).toBe(true);
    });
  });
}

function message(body: string, headers: Record<string, unknown> = {}): TransportMessage {
  return {
    headers,
    properties: { contentType: 'application/octet-stream', deliveryMode: 2 },
    body: Buffer.from(body),
  };
}
