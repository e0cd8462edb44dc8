import { randomUUID } from 'node:crypto';
import { ConfigError, ConnectionError } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { Redis } from 'ioredis';
import { RedisResultBackend } from '../src';
import { REDIS_URL } from '../../../test/support/services';
import { meta, RedisTestKit } from '../../../test/support/redis-backend';

function withDb(url: string, db: number): string {
  const parsed = new URL(url);
  parsed.pathname = `/${db}`;
  return parsed.toString();
}

describe('configuration', () => {
  let kit: RedisTestKit;

  beforeEach(() => {
    kit = new RedisTestKit();
  });
  afterEach(() => kit.cleanup());

  describe('connecting by url', () => {
    it('uses the database number of a redis:// url', async () => {
      const backend = kit.backend({ url: withDb(REDIS_URL, 5) });
      const id = randomUUID();
      const key = `${kit.keyPrefix}${id}`;
      kit.remember(key, 5);
      const stored = meta(id, 'SUCCESS', 'db5');
      await backend.store(stored);
      await expect(backend.waitForReady(id, 5_000)).resolves.toEqual(stored);

      const db5 = kit.client(withDb(REDIS_URL, 5));
      expect(await db5.exists(key)).toBe(1);
      expect(await kit.admin.exists(key)).toBe(0);
    });

    // ioredis 6 speaks RESP3 by default; a subscribed RESP2 connection can run nothing but
    // (UN)SUBSCRIBE, which is why keys are read on the command connection.
    it.each([2, 3] as const)('waits and stores over RESP%i', async (protocol) => {
      const backend = kit.backend({ redisOptions: { protocol } });
      const id = randomUUID();
      const waiting = backend.waitForReady(id, 10_000);
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName))[0]?.resp === String(protocol),
        `a RESP${protocol} subscriber`,
      );
      const stored = meta(id, 'SUCCESS', protocol);
      await backend.store(stored);
      await expect(waiting).resolves.toEqual(stored);
    });

    it('names its connections with CLIENT SETNAME, command and subscriber apart', async () => {
      const backend = kit.backend();
      await backend.connect();
      const waiting = backend.waitForReady(randomUUID(), 10_000);
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName)).length === 1,
        'subscriber',
      );
      expect(await kit.clientsNamed(`${kit.connectionName}:${process.pid}`)).toHaveLength(1);
      await backend.close();
      await expect(waiting).resolves.toBeUndefined();
    });

    it('does not open a connection before the first operation', async () => {
      kit.backend();
      await new Promise((r) => setTimeout(r, 100));
      expect(await kit.clientsNamed(`${kit.connectionName}:${process.pid}`)).toHaveLength(0);
    });
  });

  describe('with an existing ioredis client', () => {
    it('stores, waits through a duplicate() subscriber, and leaves the client open on close()', async () => {
      const client = kit.client();
      const backend = kit.backend({ client });
      const writer = kit.backend();
      const id = randomUUID();
      const waiting = backend.waitForReady(id, 10_000);
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName)).length === 1,
        'subscriber',
      );
      const stored = meta(id, 'SUCCESS', 'via client');
      await writer.store(stored);
      await expect(waiting).resolves.toEqual(stored);

      await backend.close();
      expect(client.status).toBe('ready');
      await expect(client.ping()).resolves.toBe('PONG');
      await waitFor(
        async () => (await kit.clientsNamed(kit.subscriberName)).length === 0,
        'subscriber closed',
      );
    });

    it('closes the client on close() when closeClient is true', async () => {
      const client = new Redis(REDIS_URL);
      const backend = kit.backend({ client, closeClient: true });
      await backend.store(meta(randomUUID(), 'SUCCESS', 1));
      await backend.close();
      expect(client.status).toBe('end');
    });

    it("subscribes to the channel the client's own keyPrefix makes of the key", async () => {
      const client = new Redis(REDIS_URL, { keyPrefix: `${kit.prefix}app:` });
      const backend = kit.backend({
        client,
        closeClient: true,
        keyPrefix: 'meta-',
        groupKeyPrefix: 'group-',
      });
      const id = randomUUID();
      const waiting = backend.waitForReady(id, 10_000);
      await waitFor(
        async () =>
          Number(
            ((await kit.admin.pubsub('NUMSUB', `${kit.prefix}app:meta-${id}`)) as unknown[])[1],
          ) === 1,
        'subscription on the prefixed channel',
      );
      const stored = meta(id, 'SUCCESS', 'prefixed');
      await backend.store(stored);
      await expect(waiting).resolves.toEqual(stored);
      expect(await kit.admin.exists(`${kit.prefix}app:meta-${id}`)).toBe(1);
    });
  });

  describe('the store script', () => {
    it('loads the script again when Redis has forgotten it (NOSCRIPT)', async () => {
      const backend = kit.backend();
      const id = randomUUID();
      await backend.store(meta(id, 'STARTED'));
      // Scripts are a cache that every client must refill; this is what a restart or failover does.
      await kit.admin.script('FLUSH');
      await backend.store(meta(id, 'SUCCESS', 'after flush'));
      await backend.store(meta(id, 'STARTED'));
      expect((await backend.get(id))?.result).toBe('after flush');
    });
  });

  describe('invalid options', () => {
    it('refuses both url and client', () => {
      const client = kit.client();
      expect(() => new RedisResultBackend({ url: REDIS_URL, client })).toThrow(ConfigError);
    });

    it('refuses a url that is not redis:// or rediss://, without echoing its password', () => {
      let error: unknown;
      try {
        new RedisResultBackend({ url: 'http://user:s3cret-pw@example.com:6379' });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect(String((error as Error).message)).not.toContain('s3cret-pw');
      expect(String((error as Error).message)).toContain('***');
    });

    it.each([
      [{ resultExpiresMs: -1 }],
      [{ resultExpiresMs: Number.NaN }],
      [{ commandTimeoutMs: 0 }],
      [{ connectionName: 'has space' }],
      [{ keyPrefix: 'same-', groupKeyPrefix: 'same-' }],
    ])('refuses %j', (options) => {
      expect(() => new RedisResultBackend({ url: REDIS_URL, ...options })).toThrow(ConfigError);
    });
  });

  it('reports an unreachable Redis as ConnectionError without the password', async () => {
    const backend = kit.backend({
      url: 'redis://:s3cret-pw@127.0.0.1:1/0',
      // No retries: the connection ends at the first refusal, so nothing is left to clean up.
      redisOptions: { retryStrategy: () => null },
    });
    const error = await backend.store(meta(randomUUID(), 'SUCCESS', 1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as Error).message).not.toContain('s3cret-pw');
  });

  it('tells onError of a Redis it cannot reach between calls, without the credentials', async () => {
    const reported: Error[] = [];
    const backend = kit.backend({
      url: 'redis://someone:s3cret-pw@127.0.0.1:1/0',
      redisOptions: { retryStrategy: () => null },
      onError: (error) => reported.push(error),
    });
    const heard: Error[] = [];
    backend.onBackgroundError((error) => heard.push(error));
    // connect() rejects by itself; the connection's own error must reach the hook as well.
    await backend.connect().catch(() => undefined);
    await waitFor(() => reported.length > 0 && heard.length > 0, 'a background error');
    expect(reported[0]).toBeInstanceOf(ConnectionError);
    expect(reported[0]!.message).toMatch(/^redis: /);
    for (const error of reported) {
      expect(error.message).not.toContain('s3cret-pw');
      expect(error.message).not.toContain('someone');
    }
  });
});
