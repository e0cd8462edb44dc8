import { randomUUID } from 'node:crypto';
import { ConnectionError } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { TcpProxy } from '../../../test/support/tcp-proxy';
import { REDIS_URL } from '../../../test/support/services';
import { RedisResultBackend } from '../src';
import { meta, RedisTestKit } from '../../../test/support/redis-backend';

describe('recovery from a lost Redis connection', () => {
  let kit: RedisTestKit;
  let proxy: TcpProxy;
  let proxiedUrl: string;

  beforeEach(async () => {
    kit = new RedisTestKit();
    const target = new URL(REDIS_URL);
    proxy = new TcpProxy(target.hostname, Number(target.port || 6379));
    await proxy.start();
    proxiedUrl = proxy.rewrite(REDIS_URL);
  });
  afterEach(async () => {
    proxy.unblock();
    await kit.cleanup();
    await proxy.stop();
  });

  // A fast, fixed reconnect delay keeps the tests short; the behaviour is the same with backoff.
  const fastReconnect = { retryStrategy: () => 100 };

  it('resolves pending waits after reconnecting, including results published while cut off', async () => {
    const waiter = kit.backend({ url: proxiedUrl, redisOptions: fastReconnect });
    const writer = kit.backend();
    const [missed, later] = [randomUUID(), randomUUID()];
    const waits = [waiter.waitForReady(missed, 20_000), waiter.waitForReady(later, 20_000)];
    await waitFor(
      async () => (await kit.clientsNamed(kit.subscriberName))[0]?.sub === '2',
      'subscriptions',
    );

    proxy.block();
    await waitFor(
      async () => (await kit.clientsNamed(kit.subscriberName)).length === 0,
      'subscriber cut off',
    );
    // Published to nobody: only the re-read after reconnecting can find it.
    const missedMeta = meta(missed, 'SUCCESS', 'published during the outage');
    await writer.store(missedMeta);

    proxy.unblock();
    await expect(waits[0]).resolves.toEqual(missedMeta);
    await waitFor(
      async () => (await kit.clientsNamed(kit.subscriberName))[0]?.sub === '1',
      'resubscribed',
    );
    const laterMeta = meta(later, 'FAILURE', { exc_type: 'E', exc_message: [], exc_module: null });
    await writer.store(laterMeta);
    await expect(waits[1]).resolves.toEqual(laterMeta);
  });

  it('resolves a wait begun during the outage once the connection is back', async () => {
    const waiter = kit.backend({ url: proxiedUrl, redisOptions: fastReconnect });
    await waiter.connect();
    proxy.block();
    const id = randomUUID();
    const waiting = waiter.waitForReady(id, 20_000);
    const stored = meta(id, 'SUCCESS', 1);
    await kit.backend().store(stored);
    proxy.unblock();
    await expect(waiting).resolves.toEqual(stored);
  });

  it('still ends a wait at its timeout while Redis is unreachable', async () => {
    const waiter = kit.backend({ url: proxiedUrl, redisOptions: fastReconnect });
    const id = randomUUID();
    const longId = randomUUID();
    const long = waiter.waitForReady(longId, 20_000);
    const subscribed = async (): Promise<boolean> => {
      const reply = (await kit.admin.pubsub('NUMSUB', `${kit.keyPrefix}${longId}`)) as [
        string,
        number | string,
      ];
      return Number(reply[1]) === 1;
    };
    await waitFor(subscribed, 'subscription');
    proxy.block();

    const started = Date.now();
    const error = await waiter.waitForReady(id, 500).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(490);
    // Ended while the proxy still refuses every connection: the timeout needs no Redis, and
    // says that Redis could not be reached rather than pass for a pending task.
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).toContain(
      `redis: ${proxiedUrl.replace(/\/$/, '')} could not be reached while waiting 500 ms`,
    );
    // Reconnected before closing: ioredis' disconnect() of an already dead socket holds the
    // process open for 2 s, which Jest reports as a leak, and close() reports a connection that
    // is still reconnecting. Both connections are seen ready by what they do, not by their name
    // on the server (which appears before the client's own ready): the subscriber has
    // subscribed again, and a read goes through the command connection.
    proxy.unblock();
    await waitFor(subscribed, 'subscribed again');
    await waiter.get(randomUUID());
    await waiter.close();
    await expect(long).resolves.toBeUndefined();
  });

  it('rejects store() with ConnectionError within commandTimeoutMs while Redis is unreachable', async () => {
    const backend = kit.backend({
      url: proxiedUrl,
      commandTimeoutMs: 500,
      redisOptions: fastReconnect,
    });
    await backend.connect();
    proxy.block();
    const id = randomUUID();

    const attempt = backend.store(meta(id, 'SUCCESS', 'x'));
    await expect(attempt).rejects.toBeInstanceOf(ConnectionError);
    await expect(attempt).rejects.toMatchObject({ code: 'CONVEYOR_ERR_CONNECTION' });

    // The worker's retry succeeds once Redis is back.
    proxy.unblock();
    const stored = meta(id, 'SUCCESS', 'y');
    await waitFor(
      () =>
        backend.store(stored).then(
          () => true,
          () => false,
        ),
      'a store to succeed after the outage',
    );
    // The abandoned first attempt may still run after reconnecting; either way the key holds a
    // final result and nothing ever replaces it.
    expect((await kit.backend().get(id))?.status).toBe('SUCCESS');
  });

  it('rejects get() with ConnectionError within commandTimeoutMs while Redis is unreachable', async () => {
    const backend = kit.backend({
      url: proxiedUrl,
      commandTimeoutMs: 300,
      redisOptions: fastReconnect,
    });
    await backend.connect();
    proxy.block();
    await expect(backend.get(randomUUID())).rejects.toBeInstanceOf(ConnectionError);
    proxy.unblock();
    await backend.connect();
  });

  it('close() settles, with waits and commands pending, while Redis is cut off, and says it could not close cleanly', async () => {
    const backend = new RedisResultBackend({
      url: proxiedUrl,
      keyPrefix: kit.keyPrefix,
      commandTimeoutMs: 500,
      // ioredis keeps a dead socket for disconnectTimeout (2 s) after disconnect(), which Jest
      // reports as a leak; closing while cut off is the point here.
      redisOptions: { retryStrategy: () => 100, disconnectTimeout: 50 },
    });
    await backend.connect();
    const waiting = backend.waitForReady(randomUUID(), 20_000);
    await waitFor(async () => proxy.connections >= 2, 'the subscriber connection');
    proxy.block();
    proxy.cut();
    const stored = backend.store(meta(randomUUID(), 'SUCCESS', 1)).catch((e: unknown) => e);
    // (A script that awaits close() in a process of its own: unreachable.test.ts.)
    await expect(backend.close()).rejects.toThrow(/not closed cleanly/);
    await expect(waiting).resolves.toBeUndefined();
    await expect(stored).resolves.toBeInstanceOf(ConnectionError);
  });
});
