import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  CONTROL_EXCHANGE,
  encodeRevoke,
  type RevokeCommand,
  DEAD_LETTER_REASON_HEADER,
  deadLetterQueueName,
} from '@conveyor/core/plugin';
import {
  Conveyor,
  Task,
  TaskFailedError,
  TaskRevokedError,
  TaskService,
  taskContext,
  UnrecoverableError,
  type ConveyorOptions,
  type ResultBackend,
  type TaskEvent,
  type Transport,
  type TransportMessage,
  type Worker,
  type WorkerOptions,
} from '@conveyor/core';
import { sleep, waitFor } from './wait-for';

/** What a transport/backend pair gives the worker-semantics suite. */
export interface SemanticsFixture {
  /** A new connection to the broker (several may be open at once). */
  transport(): Transport;
  /** A new connection to the result store. */
  backend(): ResultBackend;
  /** Removes the named queues (and their dead-letter queues) from the broker. */
  removeQueues(names: string[]): Promise<void>;
}

class TransientError extends Error {
  override name = 'TransientError';
}
class FatalConfigError extends UnrecoverableError {}

/** Shared state the test tasks write to; reset per test. */
const probe = {
  attempts: [] as Array<{ at: number; retries: number }>,
  failuresLeft: 0,
  runs: 0,
  aborted: [] as string[],
  started: [] as string[],
  order: [] as string[],
  /** What `reportsProgress` waits for after its progress. */
  gate: Promise.resolve() as Promise<void>,
};

@TaskService({ name: 'semantics' })
class SemanticsService {
  @Task({ retry: { max: 3, backoff: 'exponential', delayMs: 300, jitter: false } })
  flaky(): string {
    const ctx = taskContext();
    probe.attempts.push({ at: Date.now(), retries: ctx.retries });
    if (probe.failuresLeft-- > 0) throw new TransientError(`transient failure ${ctx.attempt}`);
    return `succeeded on attempt ${ctx.attempt}`;
  }

  @Task({ retry: { max: 2, backoff: 'fixed', delayMs: 100 } })
  alwaysFails(): never {
    probe.attempts.push({ at: Date.now(), retries: taskContext().retries });
    throw new TransientError(`failure ${taskContext().attempt}`);
  }

  @Task({ retry: { max: 3, delayMs: 50, on: [TransientError] } })
  failsOtherwise(kind: string): never {
    probe.attempts.push({ at: Date.now(), retries: taskContext().retries });
    if (kind === 'fatal') throw new FatalConfigError('bad configuration');
    throw new TypeError('not a transient error');
  }

  @Task()
  explicitRetry(): string {
    const ctx = taskContext();
    probe.attempts.push({ at: Date.now(), retries: ctx.retries });
    if (ctx.retries < 2) ctx.retry({ countdownMs: 100, error: new TransientError('not yet') });
    return 'done';
  }

  @Task({ timeLimitMs: 400 })
  async hangs(): Promise<string> {
    probe.runs += 1;
    await new Promise(() => undefined);
    return 'never';
  }

  @Task({ softTimeLimitMs: 200, timeLimitMs: 5_000 })
  async softLimited(): Promise<string> {
    const { signal } = taskContext();
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
    return `cleaned up after ${(signal.reason as Error).name}`;
  }

  @Task({ rateLimit: '20/s' })
  limited(i: number): number {
    return i;
  }

  @Task()
  unlimited(i: number): number {
    return i;
  }

  @Task()
  counted(): number {
    probe.runs += 1;
    return probe.runs;
  }

  @Task()
  async reportsProgress(of: number): Promise<string> {
    const ctx = taskContext();
    await ctx.progress({ done: 1, of });
    await probe.gate;
    return `done ${of}`;
  }

  @Task()
  async untilAborted(): Promise<string> {
    const ctx = taskContext();
    probe.started.push(ctx.id);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    probe.aborted.push(ctx.id);
    return 'aborted';
  }

  /** Ignores its AbortSignal: only `probe.gate` ends it. */
  @Task()
  async ignoresAbort(): Promise<string> {
    const ctx = taskContext();
    probe.started.push(ctx.id);
    await probe.gate;
    probe.order.push(`finished ${ctx.id}`);
    return 'finished';
  }

  @Task()
  async record(label: string, ms: number): Promise<string> {
    probe.order.push(label);
    await sleep(ms);
    return label;
  }
}

// Plain JavaScript that task threads load by path (as `appModule`), so it is required by path.
const cpuModule = join(__dirname, 'fixtures/cpu-tasks.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { CpuService } = require(cpuModule) as { CpuService: new () => object };

/**
 * Registers the production behaviours of the worker (retries, time limits, thread isolation,
 * rate limits, revokes, priorities, shutdown, events) against one transport and backend: what a
 * transport and backend must support together for Conveyor's worker to keep its promises. Run it
 * beside {@link describeTransportConformance} and {@link describeBackendConformance}.
 *
 * Task threads load `@conveyor/core` as Node resolves it (its built `dist`), so build it first.
 */
export function describeWorkerSemantics(label: string, makeFixture: () => SemanticsFixture): void {
  describe(`Worker semantics: ${label}`, () => {
    let fixture: SemanticsFixture;
    let queue: string;
    const apps: Conveyor[] = [];
    const workers: Worker[] = [];

    const newApp = (options: Partial<ConveyorOptions> = {}): Conveyor => {
      const app = new Conveyor({
        broker: fixture.transport(),
        backend: fixture.backend(),
        tasks: [SemanticsService, CpuService],
        defaultQueue: queue,
        ...options,
      });
      apps.push(app);
      return app;
    };
    const startWorker = async (app: Conveyor, options: WorkerOptions = {}): Promise<Worker> => {
      const worker = app.worker({ handleSignals: false, appModule: cpuModule, ...options });
      workers.push(worker);
      await worker.start();
      return worker;
    };
    const client = (app: Conveyor) => app.client(SemanticsService);
    /** Reads the dead-letter queue until `expected` arrived, then 300 ms more for extras. */
    const readDeadLetters = async (app: Conveyor, expected = 0): Promise<TransportMessage[]> => {
      const dead: TransportMessage[] = [];
      const consumer = await app.transport.consume(
        deadLetterQueueName(queue),
        (d) => {
          dead.push(d.message);
          void d.ack();
        },
        { prefetch: 100 },
      );
      // Dead-lettering follows the stored FAILURE, so a result seen does not mean it is there.
      await waitFor(() => dead.length >= expected, `${expected} dead letter(s)`);
      await sleep(300);
      await consumer.cancel();
      return dead;
    };

    beforeAll(() => {
      fixture = makeFixture();
    });
    beforeEach(() => {
      queue = `semantics-${randomUUID()}`;
      Object.assign(probe, {
        attempts: [],
        failuresLeft: 0,
        runs: 0,
        aborted: [],
        started: [],
        order: [],
        gate: Promise.resolve(),
      });
    });
    afterEach(async () => {
      await Promise.all(workers.splice(0).map((w) => w.stop()));
      await Promise.all(apps.splice(0).map((a) => a.close()));
      await fixture.removeQueues([queue]);
    });

    describe('retries', () => {
      it('retries with exponential backoff through the broker until it succeeds', async () => {
        const app = newApp();
        const worker = await startWorker(app);
        const retried: TaskEvent[] = [];
        worker.on('task-retried', (e) => retried.push(e));
        probe.failuresLeft = 2;
        const result = await client(app).flaky.delay();
        await expect(result.get({ timeoutMs: 15_000 })).resolves.toBe('succeeded on attempt 3');
        expect(probe.attempts.map((a) => a.retries)).toEqual([0, 1, 2]);
        const gaps = [
          probe.attempts[1]!.at - probe.attempts[0]!.at,
          probe.attempts[2]!.at - probe.attempts[1]!.at,
        ];
        // 300 ms then 600 ms; the broker releases delayed messages within a second.
        expect(gaps[0]).toBeGreaterThanOrEqual(290);
        expect(gaps[0]).toBeLessThan(300 + 1_000);
        expect(gaps[1]).toBeGreaterThanOrEqual(590);
        expect(gaps[1]).toBeLessThan(600 + 1_000);
        expect(retried.map((e) => [e.retries, e.retryInMs])).toEqual([
          [1, 300],
          [2, 600],
        ]);
        expect(retried.every((e) => e.id === result.id && e.name === 'semantics.flaky')).toBe(true);
      });

      it('stores RETRY between attempts, with the error that caused it', async () => {
        const app = newApp();
        const worker = await startWorker(app);
        probe.failuresLeft = 1;
        const states: string[] = [];
        worker.on(
          'task-retried',
          () => void app.backend!.get(result.id).then((m) => states.push(m?.status ?? 'none')),
        );
        const result = await client(app).flaky.delay();
        await result.get({ timeoutMs: 10_000 });
        await waitFor(() => states.length === 1, 'state read');
        expect(states).toEqual(['RETRY']);
      });

      it('fails with the last error past max retries and dead-letters the message with the reason', async () => {
        const app = newApp();
        await startWorker(app);
        const result = await client(app).alwaysFails.delay();
        const error = (await result
          .get({ timeoutMs: 10_000 })
          .catch((e: unknown) => e)) as TaskFailedError;
        expect(error).toBeInstanceOf(TaskFailedError);
        expect(error.excType).toBe('TransientError');
        expect(error.excMessage).toEqual(['failure 3']);
        expect(probe.attempts.map((a) => a.retries)).toEqual([0, 1, 2]);
        const dead = await readDeadLetters(app, 1);
        expect(dead).toHaveLength(1);
        expect(dead[0]!.headers.id).toBe(result.id);
        expect(dead[0]!.headers.retries).toBe(2);
        expect(String(dead[0]!.headers[DEAD_LETTER_REASON_HEADER])).toContain(
          'retries exhausted after 2 retries; last error TransientError: failure 3',
        );
      });

      it('does not retry errors outside `on`, nor UnrecoverableError', async () => {
        const app = newApp();
        await startWorker(app);
        const other = await client(app).failsOtherwise.delay('type');
        await expect(other.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
          excType: 'TypeError',
        });
        const fatal = await client(app).failsOtherwise.delay('fatal');
        await expect(fatal.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
          excType: 'FatalConfigError',
        });
        expect(probe.attempts.map((a) => a.retries)).toEqual([0, 0]);
        expect(await readDeadLetters(app)).toHaveLength(0);
      });

      it('retries when the task calls taskContext().retry(), keeping root and parent ids', async () => {
        const app = newApp();
        await startWorker(app);
        const result = await client(app).explicitRetry.delay();
        await expect(result.get({ timeoutMs: 10_000 })).resolves.toBe('done');
        expect(probe.attempts.map((a) => a.retries)).toEqual([0, 1, 2]);
        expect(probe.attempts[1]!.at - probe.attempts[0]!.at).toBeGreaterThanOrEqual(90);
      });
    });

    describe('progress', () => {
      it('stores PROGRESS with the meta the task reports, then the result replaces it', async () => {
        const app = newApp();
        await startWorker(app);
        let release = (): void => undefined;
        probe.gate = new Promise((resolve) => (release = resolve));
        const result = await client(app).reportsProgress.delay(3);
        await waitFor(async () => (await result.state()) === 'PROGRESS', 'PROGRESS stored');
        await expect(result.info()).resolves.toEqual({ done: 1, of: 3 });
        release();
        await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe('done 3');
        await expect(result.info()).resolves.toBe('done 3');
      });

      it('stores the progress a task reports from a thread', async () => {
        const app = newApp();
        await startWorker(app);
        const cpu = app.client(
          CpuService as new () => { progressThenReturn(ms: number): Promise<string> },
        );
        const result = await cpu.progressThenReturn.delay(3_000);
        await waitFor(async () => (await result.state()) === 'PROGRESS', 'PROGRESS stored');
        await expect(result.info()).resolves.toEqual({ step: 1, in: 'thread' });
        await expect(result.get({ timeoutMs: 10_000 })).resolves.toBe('returned after 3000 ms');
      });
    });

    describe('time limits', () => {
      it('fails a task past its hard limit with TaskTimeLimitError and keeps serving', async () => {
        const app = newApp();
        const worker = await startWorker(app, { concurrency: 1 });
        const hung = await client(app).hangs.delay();
        await expect(hung.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
          excType: 'TimeLimitExceeded',
          excModule: 'billiard.exceptions',
        });
        await waitFor(() => worker.activeCount === 0, 'the slot to be freed');
        await expect(
          (await client(app).unlimited.delay(7)).get({ timeoutMs: 5_000 }),
        ).resolves.toBe(7);
      });

      it('fires the AbortSignal at the soft limit and lets the task clean up', async () => {
        const app = newApp();
        await startWorker(app);
        const result = await client(app).softLimited.delay();
        await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe(
          'cleaned up after SoftTimeLimitExceededError',
        );
      });

      it('applies per-call limits from the timelimit header', async () => {
        const app = newApp();
        await startWorker(app);
        const result = await client(app).untilAborted.applyAsync([], { timeLimitMs: 300 });
        await expect(result.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
          excType: 'TimeLimitExceeded',
          excModule: 'billiard.exceptions',
        });
      });

      it("stops a CPU-bound loop with isolation 'thread' at its hard limit, and serves others meanwhile", async () => {
        const app = newApp();
        await startWorker(app, { concurrency: 2 });
        const cpu = app.client(CpuService as new () => { spin(): void; square(n: number): number });
        const spinning = await cpu.spin.applyAsync([], { timeLimitMs: 500 });
        const squared = await cpu.square.delay(12);
        await expect(squared.get({ timeoutMs: 10_000 })).resolves.toBe(144);
        await expect(spinning.get({ timeoutMs: 10_000 })).rejects.toMatchObject({
          excType: 'TimeLimitExceeded',
          excModule: 'billiard.exceptions',
        });
        await expect((await cpu.square.delay(3)).get({ timeoutMs: 10_000 })).resolves.toBe(9);
      });

      it('fires the soft limit inside a task thread', async () => {
        const app = newApp();
        await startWorker(app);
        const cpu = app.client(CpuService as new () => { waitForSoftLimit(): string });
        const result = await cpu.waitForSoftLimit.applyAsync([], { softTimeLimitMs: 200 });
        await expect(result.get({ timeoutMs: 10_000 })).resolves.toBe(
          'cleaned up after SoftTimeLimitExceededError',
        );
      });
    });

    describe('delayed tasks', () => {
      it('keeps a worker with concurrency 1 serving while 1,000 delayed tasks wait in the broker', async () => {
        const app = newApp();
        const worker = await startWorker(app, { concurrency: 1 });
        await Promise.all(
          Array.from({ length: 1_000 }, (_, i) =>
            client(app).unlimited.applyAsync([i], { countdownMs: 120_000 }),
          ),
        );
        const now = await Promise.all(
          Array.from({ length: 20 }, (_, i) => client(app).unlimited.delay(i)),
        );
        await expect(Promise.all(now.map((r) => r.get({ timeoutMs: 10_000 })))).resolves.toEqual(
          Array.from({ length: 20 }, (_, i) => i),
        );
        expect(worker.activeCount).toBeLessThanOrEqual(1);
      });
    });

    describe('rate limits', () => {
      it("spreads 100 tasks at '20/s' over about 5 s while another task type runs unthrottled", async () => {
        const app = newApp();
        const worker = await startWorker(app, { concurrency: 4 });
        const succeeded: string[] = [];
        worker.on('task-succeeded', (e) => succeeded.push(e.name));
        const started = Date.now();
        const limited = await Promise.all(
          Array.from({ length: 100 }, (_, i) => client(app).limited.delay(i)),
        );
        const unlimited = await Promise.all(
          Array.from({ length: 20 }, (_, i) => client(app).unlimited.delay(i)),
        );
        await Promise.all(unlimited.map((r) => r.get({ timeoutMs: 10_000 })));
        await Promise.all(limited.map((r) => r.get({ timeoutMs: 20_000 })));
        const limitedDone = Date.now() - started;
        // 100 runs one every 50 ms: the last starts 4.95 s after the first.
        expect(limitedDone).toBeGreaterThanOrEqual(4_900);
        expect(limitedDone).toBeLessThan(9_000);
        // The unthrottled tasks, sent after all 100, did not queue behind them: every one of
        // them was done before half of the throttled ones.
        const limitedAt = succeeded.flatMap((n, i) => (n === 'semantics.limited' ? [i] : []));
        expect(limitedAt).toHaveLength(100);
        expect(succeeded.filter((n) => n === 'semantics.unlimited')).toHaveLength(20);
        expect(succeeded.lastIndexOf('semantics.unlimited')).toBeLessThan(limitedAt[49]!);
      });
    });

    describe('revoke', () => {
      it('skips a task revoked before a worker that started later ever heard of it', async () => {
        const app = newApp();
        const result = await client(app).counted.delay();
        await result.revoke();
        const worker = await startWorker(newApp());
        const revoked: TaskEvent[] = [];
        worker.on('task-revoked', (e) => revoked.push(e));
        const error = await result.get({ timeoutMs: 5_000 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TaskRevokedError);
        await waitFor(() => revoked.length === 1, 'the revoked event');
        expect(revoked[0]).toMatchObject({ id: result.id, reason: 'revoked' });
        expect(probe.runs).toBe(0);
      });

      it('aborts a running task with terminate, and the worker keeps serving', async () => {
        const app = newApp();
        const worker = await startWorker(app);
        const running = await client(app).untilAborted.delay();
        // Revoked once the task runs: a revoke that comes earlier skips it (the test above).
        await waitFor(() => probe.started.includes(running.id), 'the task to run');
        expect(worker.activeCount).toBe(1);
        await app.revoke(running.id, { terminate: true });
        await expect(running.get({ timeoutMs: 5_000 })).rejects.toBeInstanceOf(TaskRevokedError);
        await waitFor(() => probe.aborted.includes(running.id), 'the task saw its signal');
        await expect(
          (await client(app).unlimited.delay(1)).get({ timeoutMs: 5_000 }),
        ).resolves.toBe(1);
      });

      it('frees the slot of a task without thread isolation at once on terminate, saying its code may still run', async () => {
        const app = newApp();
        const worker = await startWorker(app, { concurrency: 1 });
        const warnings: string[] = [];
        worker.on('worker-error', (e) => warnings.push(e.message));
        let release = (): void => undefined;
        probe.gate = new Promise<void>((resolve) => (release = resolve));
        try {
          const stuck = await client(app).ignoresAbort.delay();
          await waitFor(() => probe.started.includes(stuck.id), 'the task to run');
          await app.revoke(stuck.id, { terminate: true });
          await expect(stuck.get({ timeoutMs: 5_000 })).rejects.toBeInstanceOf(TaskRevokedError);
          // The only slot serves the next task while the terminated task's code still waits.
          await expect(
            (await client(app).unlimited.delay(2)).get({ timeoutMs: 5_000 }),
          ).resolves.toBe(2);
          expect(probe.order).not.toContain(`finished ${stuck.id}`);
          expect(warnings).toEqual([
            expect.stringMatching(
              new RegExp(
                `task ${stuck.id} .*terminated: its slot is free, but its own code may still be running`,
              ),
            ),
          ]);
        } finally {
          release();
        }
      });

      it('obeys only a revoke addressed to it by destination or pattern, as kombu pidbox nodes do', async () => {
        const app = newApp();
        const worker = await startWorker(app);
        const running = await client(app).untilAborted.delay();
        await waitFor(() => probe.started.includes(running.id), 'the task to run');
        const revoke = (address: Partial<RevokeCommand>) =>
          app.transport.broadcast(
            CONTROL_EXCHANGE,
            encodeRevoke({ taskIds: [running.id], terminate: true, signal: 'SIGTERM', ...address }),
          );
        await revoke({ destination: ['someone-else@nowhere'] });
        await revoke({ pattern: 'someone-*' });
        await revoke({ pattern: '^someone', matcher: 'pcre' });
        // Time for them to arrive; a worker that obeyed one would have aborted the task.
        await sleep(500);
        expect(probe.aborted).not.toContain(running.id);
        expect(worker.activeCount).toBe(1);
        const [name] = worker.hostname.split('@');
        await revoke({ pattern: `${name}@*` });
        await waitFor(() => probe.aborted.includes(running.id), 'the task saw its signal');
        await expect(running.get({ timeoutMs: 5_000 })).rejects.toBeInstanceOf(TaskRevokedError);
      });

      it('terminates a CPU-bound task in a thread', async () => {
        const app = newApp();
        const worker = await startWorker(app);
        const cpu = app.client(CpuService as new () => { spin(): void; square(n: number): number });
        const spinning = await cpu.spin.delay();
        await waitFor(() => worker.activeCount === 1, 'running');
        await sleep(200);
        await spinning.revoke({ terminate: true });
        await expect(spinning.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
          reason: expect.stringMatching(/revoked|terminated/),
        });
        await waitFor(() => worker.activeCount === 0, 'slot freed', 5_000);
        await expect((await cpu.square.delay(5)).get({ timeoutMs: 10_000 })).resolves.toBe(25);
      });
    });

    describe('priorities', () => {
      it('runs higher-priority tasks first on a priority queue', async () => {
        const app = newApp({ queues: [{ name: queue, maxPriority: 10 }] });
        for (const [label, priority] of [
          ['low', 1],
          ['mid', 5],
          ['high', 9],
        ] as const) {
          await client(app).record.applyAsync([label, 0], { priority });
        }
        await sleep(200);
        await startWorker(app, { concurrency: 1 });
        await waitFor(() => probe.order.length === 3, 'three runs');
        expect(probe.order).toEqual(['high', 'mid', 'low']);
      });
    });

    describe('graceful shutdown', () => {
      it('during 50 in-flight 2 s tasks with a 1 s timeout: each ends SUCCESS or back on the queue, a second worker completes all', async () => {
        const app = newApp();
        const first = await startWorker(app, { concurrency: 50, shutdownTimeoutMs: 1_000 });
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => client(app).record.delay(`t${i}`, 2_000)),
        );
        await waitFor(() => first.activeCount === 50, '50 running');
        const code = await first.stop();
        expect(code).toBe(1);
        const states = await Promise.all(results.map((r) => r.state()));
        expect(states.every((s) => s === 'PENDING' || s === 'SUCCESS')).toBe(true);
        await startWorker(newApp(), { concurrency: 50 });
        const values = await Promise.all(results.map((r) => r.get({ timeoutMs: 15_000 })));
        expect(values).toEqual(results.map((_, i) => `t${i}`));
      });
    });

    describe('lifecycle events', () => {
      it('emits received, started, succeeded and failed with id, name and runtime', async () => {
        const app = newApp();
        const worker = await startWorker(app);
        const events: Array<[string, TaskEvent]> = [];
        for (const name of [
          'task-received',
          'task-started',
          'task-succeeded',
          'task-failed',
        ] as const) {
          worker.on(name, (e) => events.push([name, e]));
        }
        const ok = await client(app).record.delay('x', 20);
        await ok.get({ timeoutMs: 5_000 });
        const bad = await client(app).failsOtherwise.delay('type');
        await bad.get({ timeoutMs: 5_000 }).catch(() => undefined);
        await waitFor(() => events.length === 6, 'six events');
        expect(events.map(([n, e]) => [n, e.id])).toEqual([
          ['task-received', ok.id],
          ['task-started', ok.id],
          ['task-succeeded', ok.id],
          ['task-received', bad.id],
          ['task-started', bad.id],
          ['task-failed', bad.id],
        ]);
        expect(events[2]![1]).toMatchObject({ name: 'semantics.record' });
        expect(events[2]![1].runtimeMs).toBeGreaterThanOrEqual(15);
        expect(events[5]![1].error).toBeInstanceOf(TypeError);
      });
    });
  });
}
