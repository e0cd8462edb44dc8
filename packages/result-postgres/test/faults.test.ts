import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ConnectionError } from '@conveyor/core';
import { sleep, waitFor } from '@conveyor/core/testing';
import { DATABASE_URL } from '../../../test/support/services';
import { TcpProxy } from '../../../test/support/tcp-proxy';
import { makeBackend, sql, state, success, useSchema } from '../../../test/support/postgres';

const schema = useSchema();
const PASSWORD = 'never-print-this-9f2c';
const target = new URL(DATABASE_URL);
let proxy: TcpProxy;

/** DATABASE_URL through the proxy, with a password (trust auth ignores it) to watch for leaks. */
/** A backend through the proxy whose connects and queries give up after a second. */
function shortTimeoutBackend(): ReturnType<typeof makeBackend> {
  return makeBackend(schema, {
    url: proxiedUrl(),
    connectTimeoutMs: 1_000,
    statementTimeoutMs: 1_000,
  });
}

function proxiedUrl(): string {
  const url = new URL(proxy.rewrite(DATABASE_URL));
  url.username = url.username || 'postgres';
  url.password = PASSWORD;
  return url.toString();
}

beforeAll(async () => {
  const setup = makeBackend(schema);
  await setup.connect();
  await setup.close();
});
beforeEach(async () => {
  proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
});
afterEach(() => proxy.stop());

describe('a connection killed by the server', () => {
  it('still resolves waiters after pg_terminate_backend kills every connection of the backend', async () => {
    const applicationName = `conveyor-test-${randomUUID().slice(0, 8)}`;
    const waiter = makeBackend(schema, { connectionName: applicationName });
    const writer = makeBackend(schema);
    try {
      const ids = Array.from({ length: 20 }, () => randomUUID());
      const waits = ids.map((id) => waiter.waitForReady(id, 20_000));
      // Wait until the poller and the LISTEN connection are both connected.
      await waitFor(
        async () =>
          (
            await sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [
              applicationName,
            ])
          ).length >= 2,
        'the waiter to connect',
      );
      const killed = await sql<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`,
        [applicationName],
      );
      expect(killed.length).toBeGreaterThanOrEqual(2);
      expect(killed.every((k) => k.ok)).toBe(true);

      await Promise.all(ids.map((id, i) => writer.store(success(id, i))));
      const results = await Promise.all(waits);
      expect(results.map((r) => r?.result)).toEqual(ids.map((_, i) => i));
      // The killed connections were replaced: the waiter's own store works too.
      const own = success(randomUUID(), 'after the kill');
      await waiter.store(own);
      await expect(waiter.get(own.task_id)).resolves.toEqual(own);
    } finally {
      await waiter.close();
      await writer.close();
    }
  });
});

describe('a connection cut or refused on the network', () => {
  it('stores again after every open connection was cut (the pool reconnects)', async () => {
    const b = makeBackend(schema, { url: proxiedUrl() });
    try {
      await b.store(state(randomUUID(), 'STARTED'));
      const connectionsBefore = proxy.connections;
      proxy.cut();
      const meta = success(randomUUID(), 'after cut');
      await b.store(meta);
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
      expect(proxy.connections).toBeGreaterThan(connectionsBefore);
    } finally {
      await b.close();
    }
  });

  it('survives cuts while expiry sweeps and schema checks hold a connection, and stores again after them', async () => {
    // A client checked out of the pool (the sweeper's advisory-lock session, the schema check)
    // reports a lost connection as an 'error' event; unheard, that event would be thrown and
    // end the process (and Jest's run of this file).
    const b = makeBackend(schema, { url: proxiedUrl(), connectTimeoutMs: 1_000 });
    // Sweeps attempted (under cuts this fast, on a loaded machine, none may complete).
    let sweeps = 0;
    let cutting = true;
    try {
      await b.store(state(randomUUID(), 'STARTED'));
      // Failures are expected here; what must hold is that nothing escapes and the pool recovers.
      const sweeping = (async () => {
        while (cutting) {
          sweeps += 1;
          await b.sweepExpired().catch(() => undefined);
        }
      })();
      const checking = (async () => {
        while (cutting) {
          // A new backend checks the schema on its first operation, on a checked-out client.
          const fresh = makeBackend(schema, { url: proxiedUrl() });
          await fresh.get(randomUUID()).catch(() => undefined);
          await fresh.close().catch(() => undefined);
        }
      })();
      // Cuts at random moments, and every other one while a statement is surely in flight: the
      // server's replies are held until the proxy sees a client waiting, so that cut lands on a
      // checked-out connection instead of an idle one (at random, it may never do).
      let busyCuts = 0;
      for (let i = 0; i < 60; i += 1) {
        await sleep(10 + Math.random() * 40);
        if (i % 2 === 0) {
          proxy.holdReplies();
          await waitFor(() => proxy.busy > 0, 'a statement in flight');
          busyCuts += proxy.cut();
          proxy.releaseReplies();
        } else {
          busyCuts += proxy.cut();
        }
      }
      cutting = false;
      await Promise.all([sweeping, checking]);
      expect(sweeps).toBeGreaterThan(0);
      expect(busyCuts).toBeGreaterThanOrEqual(30);
      const meta = success(randomUUID(), 'after the cuts');
      await b.store(meta);
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
    } finally {
      cutting = false;
      await b.close();
    }
  }, 30_000);

  it('rejects store with a ConnectionError in bounded time while the database is unreachable', async () => {
    const b = shortTimeoutBackend();
    try {
      await b.connect();
      proxy.block();
      const started = Date.now();
      const error = await b.store(success(randomUUID(), 'lost')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as ConnectionError).code).toBe('CONVEYOR_ERR_CONNECTION');
      expect((error as ConnectionError).message).not.toContain(PASSWORD);
      expect(Date.now() - started).toBeLessThan(10_000);
      await expect(b.get(randomUUID())).rejects.toBeInstanceOf(ConnectionError);

      proxy.unblock();
      const meta = success(randomUUID(), 'back');
      await b.store(meta);
      await expect(b.get(meta.task_id)).resolves.toEqual(meta);
    } finally {
      await b.close();
    }
  });

  it('rejects a burst of batched stores in bounded time while the database is unreachable', async () => {
    const b = shortTimeoutBackend();
    try {
      await b.connect();
      proxy.block();
      const started = Date.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 1_000 }, (_, i) => b.store(success(randomUUID(), i))),
      );
      // Queued batches fail with the first ones instead of each waiting for its own timeout.
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
      const reasons = outcomes.map((o) => (o as PromiseRejectedResult).reason as Error);
      expect(reasons.every((e) => e instanceof ConnectionError)).toBe(true);
      expect(reasons.filter((e) => e.message.includes(PASSWORD))).toEqual([]);

      proxy.unblock();
      const metas = Array.from({ length: 20 }, () => success(randomUUID(), 'back'));
      await Promise.all(metas.map((m) => b.store(m)));
      await expect(b.get(metas[19]!.task_id)).resolves.toEqual(metas[19]);
    } finally {
      await b.close();
    }
  });

  it('rejects store with a ConnectionError after connectTimeoutMs when the server never answers', async () => {
    // Accepts TCP connections and says nothing: the case a refused connection does not cover.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = new URL(DATABASE_URL);
    url.hostname = '127.0.0.1';
    url.port = String((silent.address() as AddressInfo).port);
    url.password = PASSWORD;
    url.username = url.username || 'postgres';
    const b = makeBackend(schema, { url: url.toString(), connectTimeoutMs: 500 });
    try {
      const started = Date.now();
      const error = await b.store(success(randomUUID(), 'x')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectionError);
      expect((error as Error).message).not.toContain(PASSWORD);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await b.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('times waits out during an outage and resolves the others once it ends', async () => {
    const reported: ConnectionError[] = [];
    const waiter = makeBackend(schema, {
      url: proxiedUrl(),
      connectTimeoutMs: 1_000,
      statementTimeoutMs: 1_000,
      maxPollIntervalMs: 200,
      onError: (error) => reported.push(error),
    });
    const writer = makeBackend(schema);
    try {
      await waiter.connect();
      proxy.block();

      const shortId = randomUUID();
      const longId = randomUUID();
      const started = Date.now();
      const short = waiter.waitForReady(shortId, 800);
      const long = waiter.waitForReady(longId, 20_000);
      // Both results are stored during the outage, straight to the database.
      await writer.store(success(longId, 'stored during the outage'));
      await writer.store(state(shortId, 'STARTED'));

      await expect(short).resolves.toBeUndefined();
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(750);
      expect(elapsed).toBeLessThan(5_000);

      await waitFor(() => reported.length > 0, 'a polling failure to be reported');
      proxy.unblock();
      await expect(long).resolves.toEqual(success(longId, 'stored during the outage'));

      expect(reported.every((e) => e instanceof ConnectionError)).toBe(true);
      expect(reported.some((e) => !e.message.includes(PASSWORD))).toBe(true);
      expect(reported.filter((e) => e.message.includes(PASSWORD))).toEqual([]);
    } finally {
      await waiter.close();
      await writer.close();
    }
  });

  it('wakes a waiter through polling when the LISTEN connection is down', async () => {
    const waiter = makeBackend(schema, { url: proxiedUrl(), maxPollIntervalMs: 100 });
    const writer = makeBackend(schema);
    try {
      const id = randomUUID();
      const waiting = waiter.waitForReady(id, 15_000);
      await sleep(200);
      proxy.cut(); // drops the listener (and pooled connections); the listener reconnects with backoff
      await writer.store(success(id, 'no notification needed'));
      await expect(waiting).resolves.toEqual(success(id, 'no notification needed'));
    } finally {
      await waiter.close();
      await writer.close();
    }
  });
});
