import { randomUUID } from 'node:crypto';
import {
  ConnectionError,
  Conveyor,
  MemoryBroker,
  MemoryTransport,
  Task,
  TaskService,
  UnrecoverableError,
  type TransportMessage,
  type Worker,
} from '@conveyor/core';
import { serveMetrics, WorkerMetrics, type MetricsServer } from '@conveyor/core/metrics';
import { waitFor } from '@conveyor/core/testing';

const flakyRuns = new Map<string, number>();

@TaskService({ name: 'metered', queue: 'metered' })
class Metered {
  @Task()
  ok(n: number): number {
    return n;
  }

  @Task()
  broken(): never {
    throw new UnrecoverableError('broken for good');
  }

  /** Fails its first run, succeeds on the retry. */
  @Task({ retry: { max: 1, delayMs: 10 } })
  flaky(key: string): string {
    const runs = (flakyRuns.get(key) ?? 0) + 1;
    flakyRuns.set(key, runs);
    if (runs === 1) throw new Error('first run fails');
    return 'second run';
  }

  /** Fails every run: two retries, then FAILURE and a dead letter. */
  @Task({ retry: { max: 2, delayMs: 10 } })
  doomed(): never {
    throw new Error('always fails');
  }
}

/** One sample of the Prometheus text format, by metric name and labels. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2]!.split(',');
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) {
      return Number(match[3]);
    }
  }
  return 0;
}

describe('WorkerMetrics', () => {
  let app: Conveyor;
  let worker: Worker | undefined;
  let server: MetricsServer | undefined;
  let metrics: WorkerMetrics | undefined;

  afterEach(async () => {
    await metrics?.close();
    await server?.close();
    await worker?.stop();
    await app.close();
    [metrics, server, worker] = [undefined, undefined, undefined];
  });

  it('counts a known mix of successes, failures, retries, redeliveries and dead letters on the scraped endpoint', async () => {
    const broker = new MemoryBroker();
    const transport = new MemoryTransport({ broker });
    app = new Conveyor({ broker: transport, tasks: [Metered] });
    const client = app.client(Metered);

    // Two messages taken by another consumer that goes away unacked: both come back redelivered.
    const redelivered = [await client.ok.delay(100), await client.ok.delay(101)];
    const other = new MemoryTransport({ broker });
    let held = 0;
    await other.consume('metered', () => (held += 1), { prefetch: 2 });
    await waitFor(() => held === 2, 'the other consumer to hold two messages', 5_000);
    await other.close();

    worker = app.worker({ handleSignals: false, concurrency: 4 });
    metrics = new WorkerMetrics(worker);
    server = await serveMetrics(metrics.registry, { port: 0, host: '127.0.0.1' });
    await worker.start();

    const results = [
      ...redelivered,
      await client.ok.delay(1),
      await client.ok.delay(2),
      await client.ok.delay(3),
      await client.broken.delay(),
      await client.broken.delay(),
      await client.flaky.delay(randomUUID()),
      await client.doomed.delay(),
    ];
    // A malformed message and an unknown task, both dead-lettered without running.
    await transport.publish(
      { headers: { task: 'metered.ok', id: randomUUID() }, properties: {}, body: Buffer.from('{') },
      { queue: 'metered' },
    );
    const unknown = await app.send('metered.nonexistent', [], { queue: 'metered' });
    for (const result of [...results, unknown]) {
      await result.get({ timeoutMs: 10_000, propagate: false });
    }
    await waitFor(
      () => transport.broker.queue('metered.dead')?.peek().length === 3,
      'three dead letters',
      5_000,
    );

    const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    const w = worker.hostname;
    const tasks = (task: string, state: string) =>
      sample(text, 'conveyor_tasks_total', { worker: w, task: `metered.${task}`, state });
    expect(tasks('ok', 'SUCCESS')).toBe(5);
    expect(tasks('flaky', 'SUCCESS')).toBe(1);
    expect(tasks('broken', 'FAILURE')).toBe(2);
    expect(tasks('doomed', 'FAILURE')).toBe(1);
    expect(tasks('flaky', 'FAILURE')).toBe(0);
    const byTask = (name: string, task: string) =>
      sample(text, name, { worker: w, task: `metered.${task}` });
    expect(byTask('conveyor_task_retries_total', 'flaky')).toBe(1);
    expect(byTask('conveyor_task_retries_total', 'doomed')).toBe(2);
    expect(byTask('conveyor_task_redeliveries_total', 'ok')).toBe(2);
    // Runs that ended in SUCCESS or FAILURE: 5 + 1 + 2 + 1 for ok, flaky, broken, doomed.
    expect(byTask('conveyor_task_runtime_seconds_count', 'ok')).toBe(5);
    expect(byTask('conveyor_task_runtime_seconds_count', 'broken')).toBe(2);
    const dead = (reason: string) =>
      sample(text, 'conveyor_dead_letters_total', { worker: w, queue: 'metered', reason });
    expect(dead('retries-exhausted')).toBe(1);
    expect(dead('malformed')).toBe(1);
    expect(dead('unregistered')).toBe(1);
    // Every state written: SUCCESS 6, FAILURE 2 + 1 + 1 (the unknown task), RETRY 1 + 2.
    const stored = (state: string) =>
      sample(text, 'conveyor_result_store_seconds_count', { worker: w, state });
    expect(stored('SUCCESS')).toBe(6);
    expect(stored('FAILURE')).toBe(4);
    expect(stored('RETRY')).toBe(3);
    expect(sample(text, 'conveyor_tasks_active', { worker: w })).toBe(0);
    expect(sample(text, 'conveyor_tasks_prefetched', { worker: w })).toBe(0);
    expect(text).toContain('# TYPE conveyor_broker_reconnects_total counter');
  });

  it('shows running and waiting tasks in the active and prefetched gauges', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    @TaskService({ name: 'gauged', queue: 'gauged' })
    class Gauged {
      @Task()
      async hold(): Promise<void> {
        await gate;
      }
    }
    app = new Conveyor({ tasks: [Gauged] });
    worker = app.worker({ handleSignals: false, concurrency: 2, prefetchMultiplier: 3 });
    metrics = new WorkerMetrics(worker);
    await worker.start();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => app.client(Gauged).hold.delay()),
    );
    await waitFor(() => worker!.activeCount === 2, 'two running tasks', 5_000);
    await waitFor(() => worker!.prefetchedCount === 3, 'three waiting tasks', 5_000);
    const text = await metrics.registry.metrics();
    expect(sample(text, 'conveyor_tasks_active', { worker: worker.hostname })).toBe(2);
    expect(sample(text, 'conveyor_tasks_prefetched', { worker: worker.hostname })).toBe(3);
    release();
    for (const result of results) await result.get({ timeoutMs: 5_000 });
  });

  it('counts the events a worker dropped while its broker refused them', async () => {
    /** A broker that refuses event publishes while `refusing` is set, as one pushing back does. */
    class RefusingTransport extends MemoryTransport {
      refusing = false;
      override async publishToExchange(
        exchange: string,
        routingKey: string,
        message: TransportMessage,
      ): Promise<void> {
        if (this.refusing) throw new ConnectionError('refused by the test broker');
        return super.publishToExchange(exchange, routingKey, message);
      }
    }
    const transport = new RefusingTransport();
    app = new Conveyor({ broker: transport, tasks: [Metered] });
    worker = app.worker({ handleSignals: false, taskEvents: true });
    metrics = new WorkerMetrics(worker);
    await worker.start();
    const hostname = worker.hostname;
    const before = sample(await metrics.registry.metrics(), 'conveyor_events_dropped_total', {
      worker: hostname,
    });
    expect(before).toBe(0);
    transport.refusing = true;
    for (let i = 0; i < 5; i += 1) {
      await (await app.client(Metered).ok.delay(i)).get({ timeoutMs: 5_000 });
    }
    await waitFor(() => worker!.eventCounts.dropped >= 15, 'three dropped events a task', 5_000);
    const dropped = worker.eventCounts.dropped;
    const text = await metrics.registry.metrics();
    expect(sample(text, 'conveyor_events_dropped_total', { worker: hostname })).toBe(dropped);
    transport.refusing = false;
  });

  it('shares an app-provided registry between workers, one worker label each', async () => {
    app = new Conveyor({ tasks: [Metered] });
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const first = app.worker({ handleSignals: false, hostname: 'first@test' });
    const second = app.worker({ handleSignals: false, hostname: 'second@test' });
    const observers = [
      new WorkerMetrics(first, { registry }),
      new WorkerMetrics(second, { registry }),
    ];
    await first.start();
    await (await app.client(Metered).ok.delay(7)).get({ timeoutMs: 5_000 });
    await first.stop();
    await second.start();
    await (await app.client(Metered).ok.delay(8)).get({ timeoutMs: 5_000 });
    worker = second;
    const text = await registry.metrics();
    for (const hostname of ['first@test', 'second@test']) {
      expect(
        sample(text, 'conveyor_tasks_total', {
          worker: hostname,
          task: 'metered.ok',
          state: 'SUCCESS',
        }),
      ).toBe(1);
    }
    await observers[0]!.close();
    expect(await registry.metrics()).not.toContain('worker="first@test"');
    await observers[1]!.close();
  });
});
