import { randomUUID } from 'node:crypto';
import {
  ConfigError,
  deadLetterQueueName,
  UnroutableError,
  type BackendWith,
  type Consumer,
  type Delivery,
  type Transport,
  type TransportMessage,
  type TransportWith,
} from '@conveyor/core/plugin';
import { sleep, waitFor } from './wait-for';

/**
 * The conformance cases of optional capabilities. A suite registers a capability's cases only
 * for a fixture that lists the capability (and checks the list against what the implementation
 * has), so an implementation is tested on everything it claims and on nothing it does not.
 */

/** What the transport suite lends a capability's cases. */
export interface TransportCaseKit {
  /** A new transport, closed after the test. */
  open(): Promise<Transport>;
  /** A new uuid-named queue, removed after the test. */
  newQueue(transport: Transport): Promise<string>;
  collect(
    transport: Transport,
    queue: string,
  ): Promise<{ deliveries: Delivery[]; consumer: Consumer }>;
  message(body: string): TransportMessage;
  /** A new uuid-named exchange name, removed after the test. */
  newExchange(): string;
}

/** Cases of the transport capability `queueAdmin`. */
export function queueAdminCases(kit: TransportCaseKit): void {
  describe('capability queueAdmin', () => {
    it('counts ready messages and consumers, and purges only the ready ones', async () => {
      // The suite checked that the transport has the members it lists.
      const t = (await kit.open()) as TransportWith<'queueAdmin'>;
      const q = await kit.newQueue(t);
      await expect(t.queueStats(q)).resolves.toEqual({ ready: 0, consumers: 0 });
      for (const body of ['a', 'b', 'c']) await t.publish(kit.message(body), { queue: q });
      await waitFor(async () => (await t.queueStats(q)).ready === 3, '3 ready messages');

      const other = await kit.open();
      const { deliveries, consumer } = await kit.collect(other, q);
      await waitFor(() => deliveries.length === 3, 'the 3 messages delivered');
      await waitFor(async () => (await t.queueStats(q)).consumers === 1, 'the consumer counted');
      await consumer.cancel();
      for (const body of ['d', 'e']) await t.publish(kit.message(body), { queue: q });
      await waitFor(async () => (await t.queueStats(q)).ready === 2, '2 new ready messages');

      await expect(t.purgeQueue(q)).resolves.toBe(2);
      await expect(t.queueStats(q)).resolves.toMatchObject({ ready: 0 });
      // The three delivered before the purge were not purged: given back, they are ready again.
      await Promise.all(deliveries.map((d) => d.requeue()));
      await waitFor(async () => (await t.queueStats(q)).ready === 3, 'the 3 requeued ready');
    });
  });
}

/** Cases of the transport capability `queueAccess`. */
export function queueAccessCases(kit: TransportCaseKit): void {
  describe('capability queueAccess', () => {
    // The suite checked that the transport has the members it lists.
    const open = async () => (await kit.open()) as TransportWith<'queueAccess'>;
    const withId = (body: string): TransportMessage => {
      const m = kit.message(body);
      return { ...m, headers: { ...m.headers, id: body } };
    };

    it('fetch takes messages in order, holds them until settled, and says how many remain', async () => {
      const t = await open();
      const q = await kit.newQueue(t);
      for (const body of ['a', 'b', 'c']) await t.publish(withId(body), { queue: q });
      const a = await t.fetch(q);
      const b = await t.fetch(q);
      expect(a?.message.body.toString()).toBe('a');
      expect(a?.message.headers.id).toBe('a');
      expect(a?.remaining).toBe(2);
      expect(b?.message.body.toString()).toBe('b');
      expect(b?.remaining).toBe(1);
      await b!.requeue();
      await a!.ack();
      const again = await t.fetch(q);
      expect(again?.message.body.toString()).toBe('b');
      expect(again?.redelivered).toBe(true);
      await again!.ack();
      const c = await t.fetch(q);
      expect(c?.message.body.toString()).toBe('c');
      expect(c?.remaining).toBe(0);
      await c!.ack();
      expect(await t.fetch(q)).toBeUndefined();
    });

    it('fetch gives held messages back when the transport closes', async () => {
      const t = await open();
      const q = await kit.newQueue(t);
      await t.publish(kit.message('held'), { queue: q });
      expect((await t.fetch(q))?.message.body.toString()).toBe('held');
      expect(await t.fetch(q)).toBeUndefined();
      await t.close();
      const other = await open();
      const back = await other.fetch(q);
      expect(back?.message.body.toString()).toBe('held');
      expect(back?.redelivered).toBe(true);
      await back!.ack();
    });

    it('fetch rejects a queue that does not exist with UnroutableError, and works on', async () => {
      const t = await open();
      await expect(t.fetch(`conformance-missing-${randomUUID()}`)).rejects.toBeInstanceOf(
        UnroutableError,
      );
      const q = await kit.newQueue(t);
      await t.publish(kit.message('after'), { queue: q });
      expect((await t.fetch(q))?.message.body.toString()).toBe('after');
    });

    it('publishToQueue reaches a dead-letter queue by name, and rejects a missing queue', async () => {
      const t = await open();
      const q = await kit.newQueue(t);
      await t.publishToQueue(deadLetterQueueName(q), withId('straight'));
      const dead = await kit.collect(t, deadLetterQueueName(q));
      await waitFor(() => dead.deliveries.length === 1, 'the message in <queue>.dead');
      expect(dead.deliveries[0]!.message.body.toString()).toBe('straight');
      expect(dead.deliveries[0]!.message.headers.id).toBe('straight');
      await dead.deliveries[0]!.ack();
      await expect(
        t.publishToQueue(`conformance-missing-${randomUUID()}`, kit.message('x')),
      ).rejects.toBeInstanceOf(UnroutableError);
    });
  });
}

/** Cases of the transport capability `exchanges`. */
export function exchangesCases(kit: TransportCaseKit): void {
  describe('capability exchanges', () => {
    it('routes what is published to a topic exchange to the subscriptions whose key matches, and drops what none takes', async () => {
      const t = (await kit.open()) as TransportWith<'exchanges'>;
      const exchange = kit.newExchange();
      await t.declareExchange({ name: exchange, type: 'topic' });
      await t.declareExchange({ name: exchange, type: 'topic' }); // idempotent
      const tasks: string[] = [];
      const any: string[] = [];
      const listener = (await kit.open()) as TransportWith<'exchanges'>;
      await listener.declareExchange({ name: exchange, type: 'topic' });
      const a = await listener.subscribeExchange(exchange, 'task.#', (m) =>
        tasks.push(m.body.toString()),
      );
      const b = await listener.subscribeExchange(exchange, '#', (m) => any.push(m.body.toString()));
      await t.publishToExchange(exchange, 'worker.heartbeat', kit.message('hb'));
      await t.publishToExchange(exchange, 'task.succeeded', kit.message('ok'));
      await t.publishToExchange(exchange, 'task.multi', kit.message('batch'));
      await waitFor(() => any.length === 3 && tasks.length === 2, 'the routed messages');
      expect(tasks.sort()).toEqual(['batch', 'ok']);
      await a.cancel();
      await b.cancel();
      // Nobody bound now: dropped, without error.
      await t.publishToExchange(exchange, 'task.succeeded', kit.message('lost'));
      await sleep(50);
      expect(any).toHaveLength(3);
    });

    it('routes by exact key on a direct exchange, as control replies are', async () => {
      const t = (await kit.open()) as TransportWith<'exchanges'>;
      const exchange = kit.newExchange();
      await t.declareExchange({ name: exchange, type: 'direct' });
      const mine: string[] = [];
      const consumer = await t.subscribeExchange(
        exchange,
        'me',
        (m) => mine.push(m.body.toString()),
        { queue: `${exchange}.me`, messageTtlMs: 300_000, expiresMs: 10_000 },
      );
      await t.publishToExchange(exchange, 'someone-else', kit.message('no'));
      await t.publishToExchange(exchange, 'me', kit.message('yes'));
      await waitFor(() => mine.length === 1, 'the reply');
      expect(mine).toEqual(['yes']);
      await consumer.cancel();
    });
  });
}

/** Cases of the transport capability `prefetch`. */
export function prefetchCases(kit: TransportCaseKit): void {
  describe('capability prefetch', () => {
    it('lets a running consumer hold more unsettled deliveries once its prefetch grows', async () => {
      const t = (await kit.open()) as TransportWith<'prefetch'>;
      const q = await kit.newQueue(t);
      for (const body of ['a', 'b', 'c', 'd']) await t.publish(kit.message(body), { queue: q });
      const deliveries: Delivery[] = [];
      const consumer = await t.consume(q, (d) => deliveries.push(d), { prefetch: 1 });
      await waitFor(() => deliveries.length === 1, 'one delivery');
      await sleep(50);
      expect(deliveries).toHaveLength(1);
      await t.setPrefetch(consumer, 3);
      // At least 3: a transport may restart the consumer, and what the old one holds then
      // counts apart until it is settled.
      await waitFor(() => deliveries.length >= 3, 'three deliveries held at once');
      await Promise.all(deliveries.map((d) => d.ack()));
      await consumer.cancel();
    });

    it("refuses a new prefetch that breaks the kit's PREFETCH_RULE, and keeps the old one", async () => {
      const t = (await kit.open()) as TransportWith<'prefetch'>;
      const q = await kit.newQueue(t);
      const deliveries: Delivery[] = [];
      const consumer = await t.consume(q, (d) => deliveries.push(d), { prefetch: 1 });
      for (const prefetch of [0, 2.5]) {
        const refused = t.setPrefetch(consumer, prefetch);
        await expect(refused).rejects.toBeInstanceOf(ConfigError);
        await expect(refused).rejects.toThrow(/`prefetch` must be an integer from 1/);
      }
      for (const body of ['a', 'b']) await t.publish(kit.message(body), { queue: q });
      await waitFor(() => deliveries.length === 1, 'one delivery');
      await sleep(50);
      expect(deliveries).toHaveLength(1);
      await deliveries[0]!.ack();
      await waitFor(() => deliveries.length === 2, 'the second delivery');
      await deliveries[1]!.ack();
      await consumer.cancel();
    });
  });
}

/** Cases of the backend capability `counters`. */
export function countersCases(open: () => Promise<BackendWith<'counters'>>): void {
  describe('capability counters', () => {
    it('increments atomically across connections, from 0', async () => {
      const [a, b] = [await open(), await open()];
      const key = `conformance-counter-${randomUUID()}`;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).increment(key, 1, 60_000)),
      );
      expect([...results].sort((x, y) => x - y)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      await expect(a.increment(key, 5, 60_000)).resolves.toBe(25);
      await b.forgetCounter(key);
    });

    it('forgets a counter, and a forgotten or expired counter counts from 0 again', async () => {
      const b = await open();
      const key = `conformance-counter-${randomUUID()}`;
      await b.increment(key, 3, 60_000);
      await b.forgetCounter(key);
      await expect(b.increment(key, 1, 1_000)).resolves.toBe(1);
      await expect(b.forgetCounter(`conformance-counter-${randomUUID()}`)).resolves.toBeUndefined();
      const expiring = `conformance-counter-${randomUUID()}`;
      await b.increment(expiring, 7, 500);
      // Nothing shows a counter's expiry but reading it, and a read is an increment: wait it out.
      await sleep(1_100);
      await expect(b.increment(expiring, 1, 60_000)).resolves.toBe(1);
      await b.forgetCounter(key);
      await b.forgetCounter(expiring);
    });
  });
}

/** Cases of the backend capability `leases`. */
export function leasesCases(open: () => Promise<BackendWith<'leases'>>): void {
  describe('capability leases', () => {
    it('gives a lease to one holder at a time, and to another once released', async () => {
      const [a, b] = [await open(), await open()];
      const name = `conformance-lease-${randomUUID()}`;
      const won = await Promise.all([
        a.acquireLease(name, 'holder-a', 60_000),
        b.acquireLease(name, 'holder-b', 60_000),
      ]);
      expect(won.filter(Boolean)).toHaveLength(1);
      const [winner, loser] = won[0] ? ['holder-a', 'holder-b'] : ['holder-b', 'holder-a'];
      await expect(a.acquireLease(name, winner, 60_000)).resolves.toBe(true);
      await b.releaseLease(name, loser);
      await expect(b.acquireLease(name, loser, 60_000)).resolves.toBe(false);
      await a.releaseLease(name, winner);
      await expect(b.acquireLease(name, loser, 60_000)).resolves.toBe(true);
      await b.releaseLease(name, loser);
    });

    it('frees a lease that expired', async () => {
      const [a, b] = [await open(), await open()];
      const name = `conformance-lease-${randomUUID()}`;
      await expect(a.acquireLease(name, 'holder-a', 500)).resolves.toBe(true);
      await expect(b.acquireLease(name, 'holder-b', 60_000)).resolves.toBe(false);
      await waitFor(
        () => b.acquireLease(name, 'holder-b', 60_000),
        'the expired lease',
        10_000,
        100,
      );
      await b.releaseLease(name, 'holder-b');
    });
  });
}
