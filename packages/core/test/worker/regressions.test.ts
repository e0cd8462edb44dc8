import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  ConfigError,
  Conveyor,
  DEAD_LETTER_REASON_HEADER,
  MemoryResultBackend,
  MemoryTransport,
  SerializationError,
  Task,
  TaskService,
  UnroutableError,
  taskContext,
  type Delivery,
  type ResultMeta,
} from '@conveyor/core';
import { sleep, waitFor } from '@conveyor/core/testing';
import { ThreadPool } from '../../src/worker/thread-pool';
import { deadLetters, queued } from './fixtures';

const root = join(__dirname, '../../../..');
const cpuModule = join(root, 'packages/core/testing/fixtures/cpu-tasks.js');

let runs = 0;

@TaskService({ name: 'reg' })
class Regressions {
  @Task()
  retryWithBadCountdown(): string {
    const ctx = taskContext();
    runs += 1;
    if (ctx.retries === 0) ctx.retry({ countdownMs: Number.NaN });
    return `ran ${runs} times`;
  }

  @Task({ rateLimit: '50/s' })
  async limited(ms: number): Promise<string> {
    await sleep(ms);
    return 'done';
  }

  @Task({ retry: { max: 2, delayMs: 10 } })
  fails(): never {
    throw new Error('always');
  }

  @Task()
  echo(value: unknown): unknown {
    return value;
  }
}

/** Wraps every delivery of `transport` so a test can make settlements fail. */
function interceptDeliveries(transport: MemoryTransport, wrap: (d: Delivery) => Delivery): void {
  const consume = transport.consume.bind(transport);
  jest
    .spyOn(transport, 'consume')
    .mockImplementation((queue, handler, options) =>
      consume(queue, (d) => handler(wrap(d)), options),
    );
}

describe('Worker regressions', () => {
  let transport: MemoryTransport;
  let app: Conveyor;
  const stops: Array<() => Promise<unknown>> = [];
  const start = async (options: Parameters<Conveyor['worker']>[0] = {}) => {
    const worker = app.worker({ handleSignals: false, ...options });
    await worker.start();
    stops.push(() => worker.stop());
    return worker;
  };

  beforeEach(() => {
    runs = 0;
    transport = new MemoryTransport();
    app = new Conveyor({ broker: transport, tasks: [Regressions] });
  });
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
    await app.close();
  });

  it('a retry with a NaN countdown falls back to the backoff instead of crashing the worker', async () => {
    await start();
    const result = await app.client(Regressions).retryWithBadCountdown.delay();
    await expect(result.get({ timeoutMs: 10_000 })).resolves.toBe('ran 2 times');
  });

  it('a graceful stop after rate-limited tasks waited locally does not requeue tasks that ran', async () => {
    const worker = await start({ concurrency: 5 });
    const results = await Promise.all(
      Array.from({ length: 5 }, () => app.client(Regressions).limited.delay(300)),
    );
    // All five waited out the rate limit locally and run (300 ms each) when the stop comes.
    await waitFor(() => worker.activeCount === 5, 'all five running');
    await expect(worker.stop()).resolves.toBe(0);
    const states = await Promise.all(results.map((r) => r.state()));
    expect(states).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
    expect(queued(transport, 'celery')).toHaveLength(0);
  });

  it('gives a message back when its dead-letter copy cannot be published, instead of holding it', async () => {
    let refusals = 1;
    interceptDeliveries(transport, (d) => ({
      message: d.message,
      queue: d.queue,
      redelivered: d.redelivered,
      ack: () => d.ack(),
      requeue: () => d.requeue(),
      deadLetter: (reason) =>
        refusals-- > 0 ? Promise.reject(new Error('broker alarm')) : d.deadLetter(reason),
    }));
    await start();
    await app.send('reg.unknown', []);
    await waitFor(() => deadLetters(transport, 'celery').length === 1, 'the dead letter', 10_000);
    expect(deadLetters(transport, 'celery')[0]!.headers[DEAD_LETTER_REASON_HEADER]).toContain(
      "task 'reg.unknown' is not registered",
    );
  });

  it('dead-letters a task whose retry the broker refuses for good, instead of rerunning it forever', async () => {
    const publish = transport.publish.bind(transport);
    jest
      .spyOn(transport, 'publish')
      .mockImplementation((message, options) =>
        message.headers.retries === 1
          ? Promise.reject(new UnroutableError('', options.queue))
          : publish(message, options),
      );
    await start();
    await app.client(Regressions).fails.delay();
    await waitFor(() => deadLetters(transport, 'celery').length === 1, 'the dead letter', 10_000);
    expect(
      String(deadLetters(transport, 'celery')[0]!.headers[DEAD_LETTER_REASON_HEADER]),
    ).toContain('could not publish the retry');
  });

  it('rejects delay() with SerializationError rather than throwing synchronously', async () => {
    const sent = app.client(Regressions).echo.delay(() => 1);
    expect(sent).toBeInstanceOf(Promise);
    await expect(sent).rejects.toBeInstanceOf(SerializationError);
  });

  it.each([
    ['an invalid eta', { eta: new Date('nope') }],
    ['a NaN countdown', { countdownMs: Number.NaN }],
    ['an invalid expires', { expires: Number.POSITIVE_INFINITY }],
    ['a priority out of range', { priority: 300 }],
  ])('refuses %s with ConfigError', async (_label, options) => {
    await expect(app.client(Regressions).echo.applyAsync([1], options)).rejects.toBeInstanceOf(
      ConfigError,
    );
  });

  it('sweeps expired results out of the memory backend', async () => {
    const backend = new MemoryResultBackend({ resultExpiresMs: 10 });
    await backend.store({
      status: 'SUCCESS',
      result: 1,
      traceback: null,
      children: [],
      date_done: null,
      task_id: 'a',
    });
    await sleep(20);
    await expect(backend.sweepExpired()).resolves.toEqual({ deleted: 1 });
  });

  it('stops within bounds while the result store is down and an unknown task just arrived', async () => {
    const down = Object.assign(new MemoryResultBackend(), {
      store: async (_meta: ResultMeta) => {
        throw new Error('store down');
      },
    });
    app = new Conveyor({ broker: transport, backend: down, tasks: [Regressions] });
    const worker = await start();
    await app.send('reg.unknown', []);
    await sleep(100);
    const started = Date.now();
    await worker.stop();
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('Thread pool regressions', () => {
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-b', 'packages/core'], { cwd: root, stdio: 'inherit' });
  }, 120_000);

  const request = (method: string, args: unknown[] = []) => ({
    type: 'run' as const,
    taskName: `cpu.${method}`,
    args,
    kwargs: {},
    context: {
      id: `id-${method}`,
      name: `cpu.${method}`,
      retries: 0,
      headers: {} as never,
      rootId: 'r',
      parentId: null,
      queue: 'q',
      redelivered: false,
      hostname: 'h',
    },
  });

  it('ignores a terminate that comes after the run ended, so the next task on that thread lives', async () => {
    const pool = new ThreadPool(cpuModule);
    try {
      const first = pool.run(request('square', [3]));
      await expect(first.outcome).resolves.toEqual({ ok: true, value: 9 });
      first.terminate();
      await expect(pool.run(request('square', [4])).outcome).resolves.toEqual({
        ok: true,
        value: 16,
      });
    } finally {
      await pool.close();
    }
  });

  it('does not hand a run to a thread that died while idle', async () => {
    const pool = new ThreadPool(cpuModule);
    try {
      await expect(pool.run(request('exitAfterReturning')).outcome).resolves.toEqual({
        ok: true,
        value: 'returned',
      });
      await sleep(200);
      await expect(pool.run(request('square', [5])).outcome).resolves.toEqual({
        ok: true,
        value: 25,
      });
    } finally {
      await pool.close();
    }
  });

  it('reports a thread that died mid-run as WorkerLostError, not as a revoke', async () => {
    const pool = new ThreadPool(cpuModule);
    try {
      await expect(pool.run(request('crash')).outcome).resolves.toMatchObject({
        ok: false,
        error: { exc_type: 'WorkerLostError' },
      });
    } finally {
      await pool.close();
    }
  });
});
