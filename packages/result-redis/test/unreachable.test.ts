import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConnectionError, Conveyor, MemoryTransport, Task } from '@conveyor/core';
import { RedisResultBackend } from '../src';

@Task({ name: 'unreachable.noop' })
class Noop {
  run(): void {}
}

/**
 * A loopback port nothing listens on: a Redis that cannot be reached. Taken from a server that
 * was opened and closed again, so the port is free but real.
 */
async function deadPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Redis unreachable', () => {
  let url: string;
  const backends: RedisResultBackend[] = [];

  beforeAll(async () => {
    // Credentials in the URL must never show in a message.
    url = `redis://reader:s3cret-${randomUUID()}@127.0.0.1:${await deadPort()}/0`;
  });
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.close().catch(() => undefined)));
  });

  const backend = (): RedisResultBackend => {
    const made = new RedisResultBackend({
      url,
      commandTimeoutMs: 300,
      // ioredis keeps a dead socket for disconnectTimeout (2 s) after disconnect(), which Jest
      // reports as a leak.
      redisOptions: { disconnectTimeout: 50 },
    });
    backends.push(made);
    return made;
  };

  const expectNamesServer = (error: unknown): void => {
    expect(error).toBeInstanceOf(ConnectionError);
    const { message, cause } = error as ConnectionError;
    expect(message).toContain(`redis://reader:***@${new URL(url).host}/0`);
    expect(message).not.toContain(new URL(url).password);
    expect(message).toMatch(/ECONNREFUSED/);
    // Node's own errors come from another realm than Jest's: matched by content, not class.
    expect(cause).toMatchObject({ message: expect.stringMatching(/ECONNREFUSED/) });
  };

  it('ends a get() at its timeout with a ConnectionError naming the server and the cause', async () => {
    const app = new Conveyor({ backend: backend() });
    const error = await app
      .result(randomUUID())
      .get({ timeoutMs: 500 })
      .catch((e: unknown) => e);
    expectNamesServer(error);
    expect((error as Error).message).toMatch(/could not be reached while waiting 500 ms/);
  });

  it('refuses to start a worker, saying which server and why', async () => {
    const app = new Conveyor({ broker: new MemoryTransport(), backend: backend(), tasks: [Noop] });
    const worker = app.worker({ handleSignals: false });
    const error = await worker.start().catch((e: unknown) => e);
    expectNamesServer(error);
    expect((error as Error).message).toMatch(/cannot start: its result backend cannot be reached/);
    await worker.stop();
  });

  it('closes the app: close() resolves, reporting the backend it could not close cleanly', async () => {
    // In a process of its own: a close that never settles shows there as a process that ends
    // without printing its report.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(__dirname, 'fixtures', 'close-unreachable.js'), url],
      { timeout: 30_000 },
    );
    const unclosed = JSON.parse(stdout.trim()) as Array<{ part: string; message: string }>;
    expect(unclosed).toEqual([
      {
        part: 'result backend',
        message: expect.stringMatching(
          /redis: redis:\/\/reader:\*\*\*@.*not closed cleanly: .*could not reach the server .*ECONNREFUSED/,
        ),
      },
    ]);
    expect(unclosed[0]!.message).not.toContain(new URL(url).password);
  });
});
