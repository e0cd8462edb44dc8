import { randomUUID } from 'node:crypto';
import type { ResultMeta } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { RedisResultBackend, type RedisResultBackendOptions } from '../src';
import { REDIS_URL } from '../../../test/support/services';
import { meta, RedisTestKit } from '../../../test/support/redis-backend';

/** Runs `land` once, in the window between SUBSCRIBE being acknowledged and the key read. */
class BackendWithLandingWindow extends RedisResultBackend {
  readonly windows: string[][] = [];

  constructor(
    options: RedisResultBackendOptions,
    private readonly land: (keys: string[]) => Promise<void>,
  ) {
    super(options);
  }

  protected override async afterSubscribe(keys: string[]): Promise<void> {
    this.windows.push(keys);
    await this.land(keys);
  }
}

/** A {@link BackendWithLandingWindow} on the kit's keys, with `options` on top. */
function landingBackend(
  kit: RedisTestKit,
  land: (keys: string[]) => Promise<void> = async () => undefined,
  options: Partial<RedisResultBackendOptions> = {},
): BackendWithLandingWindow {
  return kit.track(
    new BackendWithLandingWindow(
      { url: REDIS_URL, keyPrefix: kit.keyPrefix, groupKeyPrefix: kit.groupKeyPrefix, ...options },
      land,
    ),
  );
}

async function numsub(kit: RedisTestKit, channel: string): Promise<number> {
  const reply = (await kit.admin.pubsub('NUMSUB', channel)) as [string, number | string];
  return Number(reply[1]);
}

describe('waiting for results', () => {
  let kit: RedisTestKit;

  beforeEach(() => {
    kit = new RedisTestKit();
  });
  afterEach(() => kit.cleanup());

  describe('without races', () => {
    // Each half of the proof alone: a silent SET in the window can only be seen by the read (so the
    // read comes after the subscription), a bare PUBLISH only by the subscription (so it is live
    // before the read). The real store does both, atomically.
    it.each([
      ['only written (no message), so the key read must see it', 'set'],
      ['only published (no key), so the subscription must see it', 'publish'],
      ['stored by another backend', 'store'],
    ] as const)(
      'sees a result landing after SUBSCRIBE and before the key read: %s',
      async (_label, how) => {
        const writer = kit.backend();
        const id = randomUUID();
        const key = `${kit.keyPrefix}${id}`;
        const stored = meta(id, 'SUCCESS', 'in the window');
        const land = async (): Promise<void> => {
          if (how === 'set') await kit.admin.set(key, JSON.stringify(stored));
          else if (how === 'publish') await kit.admin.publish(key, JSON.stringify(stored));
          else await writer.store(stored);
        };
        const waiter = landingBackend(kit, land);

        await expect(waiter.waitForReady(id, 10_000)).resolves.toEqual(stored);
        expect(waiter.windows).toEqual([[key]]);
      },
    );

    it('sees a result stored before the wait began', async () => {
      const backend = kit.backend();
      const stored = meta(randomUUID(), 'FAILURE', {
        exc_type: 'ValueError',
        exc_message: ['x'],
        exc_module: 'builtins',
      });
      await backend.store(stored);
      await expect(backend.waitForReady(stored.task_id, 10_000)).resolves.toEqual(stored);
    });

    it('keeps waiting through a published STARTED and resolves on the final state', async () => {
      const waiter = kit.backend();
      const writer = kit.backend();
      const id = randomUUID();
      const waiting = waiter.waitForReady(id, 10_000);
      await waitFor(async () => (await numsub(kit, `${kit.keyPrefix}${id}`)) === 1, 'subscription');
      await writer.store(meta(id, 'STARTED'));
      await writer.store(meta(id, 'RETRY'));
      const final = meta(id, 'REVOKED');
      await writer.store(final);
      await expect(waiting).resolves.toEqual(final);
    });
  });

  describe('one subscriber connection per backend', () => {
    it('serves 10,000 concurrent waits on one subscriber connection and resolves them all', async () => {
      const waiter = kit.backend();
      const writer = kit.backend();
      const ids = Array.from({ length: 10_000 }, () => randomUUID());
      const waits = ids.map((id) => waiter.waitForReady(id, 50_000));

      await waitFor(
        async () => {
          const subs = await kit.clientsNamed(kit.subscriberName);
          return subs.length === 1 && subs[0]?.sub === '10000';
        },
        'one subscriber connection holding 10,000 channels',
        20_000,
      );

      await Promise.all(ids.map((id, i) => writer.store(meta(id, 'SUCCESS', i))));
      const results = await Promise.all(waits);
      expect(results.map((r) => r?.result)).toEqual(ids.map((_, i) => i));

      const subs = await kit.clientsNamed(kit.subscriberName);
      expect(subs).toHaveLength(1);
      // Every channel is given up once its waiter is done.
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName))[0]?.sub === '0',
        'unsubscribes',
      );
    });

    it('unsubscribes a channel only when its last waiter is done', async () => {
      const backend = kit.backend();
      const id = randomUUID();
      const channel = `${kit.keyPrefix}${id}`;
      const short = backend.waitForReady(id, 300);
      const long = backend.waitForReady(id, 30_000);
      await waitFor(async () => (await numsub(kit, channel)) === 1, 'subscription');

      await expect(short).resolves.toBeUndefined();
      expect(await numsub(kit, channel)).toBe(1);

      const stored = meta(id, 'SUCCESS', 'for the long one');
      await kit.backend().store(stored);
      await expect(long).resolves.toEqual(stored);
      await waitFor(async () => (await numsub(kit, channel)) === 0, 'unsubscribe');
    });

    it('subscribes again for a new wait on a task whose earlier wait timed out', async () => {
      const backend = kit.backend();
      const id = randomUUID();
      await expect(backend.waitForReady(id, 100)).resolves.toBeUndefined();
      const waiting = backend.waitForReady(id, 10_000);
      await waitFor(async () => (await numsub(kit, `${kit.keyPrefix}${id}`)) === 1, 'subscription');
      const stored = meta(id, 'SUCCESS', 2);
      await kit.backend().store(stored);
      await expect(waiting).resolves.toEqual(stored);
    });

    it('gives every waiter its own copy of the result', async () => {
      const backend = kit.backend();
      const stored = meta(randomUUID(), 'SUCCESS', { n: 1 });
      const waits = [
        backend.waitForReady(stored.task_id, 10_000),
        backend.waitForReady(stored.task_id, 10_000),
      ];
      await kit.backend().store(stored);
      const [a, b] = (await Promise.all(waits)) as [ResultMeta, ResultMeta];
      expect(a).toEqual(b);
      expect(a).not.toBe(b);
    });
  });

  describe('watching from the send (as Celery subscribes on send)', () => {
    it('subscribes when told of a send and answers the later wait from the result that came meanwhile, with no second subscription', async () => {
      const waiter = landingBackend(kit);
      const id = randomUUID();
      const channel = `${kit.keyPrefix}${id}`;
      waiter.watch(id);
      await waitFor(async () => (await numsub(kit, channel)) === 1, 'subscription on send');
      const stored = meta(id, 'SUCCESS', 'early');
      await kit.backend().store(stored);
      // The result arrived with nobody waiting: kept, and the channel given up.
      await waitFor(async () => (await numsub(kit, channel)) === 0, 'unsubscribe once it came');
      await expect(waiter.waitForReady(id, 10_000)).resolves.toEqual(stored);
      expect(waiter.windows).toEqual([[channel]]);
    });

    it('lets a wait join a watched channel and settles it from the message', async () => {
      const waiter = kit.backend();
      const id = randomUUID();
      const channel = `${kit.keyPrefix}${id}`;
      waiter.watch(id);
      await waitFor(async () => (await numsub(kit, channel)) === 1, 'subscription on send');
      const waiting = waiter.waitForReady(id, 10_000);
      const stored = meta(id, 'FAILURE', { exc_type: 'E', exc_message: [], exc_module: 'm' });
      await kit.backend().store(stored);
      await expect(waiting).resolves.toEqual(stored);
      await waitFor(async () => (await numsub(kit, channel)) === 0, 'unsubscribe');
    });

    it('ends a watch nobody joined after watchOnSendMs, and then waits the usual way', async () => {
      // The subscription is seen where it is recorded, not by sampling NUMSUB: a short watch on
      // a loaded machine can begin and end between two samples.
      const waiter = landingBackend(kit, undefined, { watchOnSendMs: 1_000 });
      const id = randomUUID();
      const channel = `${kit.keyPrefix}${id}`;
      waiter.watch(id);
      await waitFor(() => waiter.windows.length === 1, 'subscription on send');
      expect(waiter.windows).toEqual([[channel]]);
      await waitFor(async () => (await numsub(kit, channel)) === 0, 'the watch to end', 5_000);
      const waiting = waiter.waitForReady(id, 10_000);
      const stored = meta(id, 'SUCCESS', 'late');
      await kit.backend().store(stored);
      await expect(waiting).resolves.toEqual(stored);
    });

    it('forgets an early result nobody asked for after watchOnSendMs; a later wait reads it from Redis', async () => {
      const waiter = landingBackend(kit, undefined, { watchOnSendMs: 200 });
      const id = randomUUID();
      const channel = `${kit.keyPrefix}${id}`;
      waiter.watch(id);
      await waitFor(() => waiter.windows.length === 1, 'subscription on send');
      const stored = meta(id, 'SUCCESS', 'kept in Redis');
      await kit.backend().store(stored);
      // The early result is kept in memory until the watch's 200 ms are over.
      await new Promise((resolve) => setTimeout(resolve, 600));
      await expect(waiter.waitForReady(id, 10_000)).resolves.toEqual(stored);
      // Forgotten locally, so the wait subscribed and read again.
      expect(waiter.windows).toEqual([[channel], [channel]]);
    });

    it('does not watch when watchOnSendMs is 0', async () => {
      const waiter = kit.backend({ watchOnSendMs: 0 });
      waiter.watch(randomUUID());
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await kit.clientsNamed(kit.subscriberName)).toHaveLength(0);
    });
  });

  describe('closing', () => {
    it('reports nothing of a watch read that the close itself cut short', async () => {
      // A producer that sends (the watch starts) and closes at once: the read after SUBSCRIBE
      // meets the closed connection. That is the close, not an outage, so no error is reported.
      const errors: unknown[] = [];
      const backend: BackendWithLandingWindow = landingBackend(kit, () => backend.close(), {
        onError: (e) => errors.push(e),
      });
      backend.watch(randomUUID());
      await waitFor(() => backend.windows.length === 1, 'the watch subscribed');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(errors).toEqual([]);
    });

    it('ends pending waits with undefined and closes the subscriber connection', async () => {
      const backend = kit.backend();
      const waits = [
        backend.waitForReady(randomUUID(), 30_000),
        backend.waitForReady(randomUUID(), 30_000),
      ];
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName)).length === 1,
        'subscriber',
      );
      await backend.close();
      await expect(Promise.all(waits)).resolves.toEqual([undefined, undefined]);
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName)).length === 0,
        'subscriber gone',
      );
      await expect(backend.waitForReady(randomUUID(), 1_000)).resolves.toBeUndefined();
    });
  });
});
