import { Child } from '../children';
import { measureCpu } from '../cpu';
import { buildApp, type AckCountingTransport } from '../conveyor-app';
import {
  appSettings,
  sendAllThenGet,
  sendWindowed,
  workerConfig,
  type BenchContext,
} from '../context';
import type { BackendKind } from '../ipc';
import { perSecond, summarize } from '../stats';
import { Echo } from '../bench-tasks';
import type { Conveyor } from '@conveyor/core';
import type { ConveyorLatencyResult, ConveyorThroughputResult, Throughput } from './results';

/** A producer app in this process and one forked worker, on a fresh queue, for `work`. */
export async function withRemoteWorker<T>(
  ctx: BenchContext,
  backend: BackendKind,
  work: (app: Conveyor, worker: Child, transport: AckCountingTransport) => Promise<T>,
  options: { taskEvents?: boolean; label?: string } = {},
): Promise<T> {
  const queue = ctx.names.taskQueue(`${options.label ?? backend}`);
  const { app, transport } = buildApp(appSettings(ctx, queue, backend));
  let worker: Child | undefined;
  try {
    await app.transport.connect();
    await app.backend?.connect();
    await app.transport.declareQueue({ name: queue });
    worker = await Child.start(
      'worker-child.js',
      { ...workerConfig(ctx, queue, backend), taskEvents: options.taskEvents },
      `conveyor worker (${backend})`,
    );
    await worker.startConsuming();
    return await work(app, worker, transport);
  } finally {
    await worker?.stop();
    await app.close();
  }
}

/**
 * Throughput: N trivial tasks sent at once, then every `get()` awaited. Without a backend there
 * is nothing to `get()`: the worker process counts its acks (a wrapper on its transport counts
 * each ack once it resolved) and tells the bench over IPC when it has acked all N.
 */
export async function runThroughput(
  ctx: BenchContext,
  backend: BackendKind,
  ceiling: () => Promise<Throughput>,
): Promise<ConveyorThroughputResult> {
  const pairedCeiling = await ceiling();
  return withRemoteWorker(ctx, backend, async (app, worker) => {
    const n = ctx.sizes.throughput;
    const warm = ctx.sizes.warmup;
    if (backend === 'none') await timedAcks(worker, warm, () => sendWindowed(app, warm, warm));
    else await sendAllThenGet(app, warm, 0);
    const phases: { sendMs?: number } = {};
    let sendMs = 0;
    const { value: ms, cpu } = await measureCpu(
      [{ label: 'worker', cpuMs: async () => (await worker.stats()).cpuMs }],
      () =>
        backend === 'none'
          ? timedAcks(worker, warm + n, async () => (sendMs = await sendWindowed(app, n, n)))
          : sendAllThenGet(app, n, warm, phases),
    );
    sendMs = phases.sendMs ?? sendMs;
    ctx.log(
      `throughput ${backend}: ${n} tasks in ${ms.toFixed(0)} ms (all delay() resolved at ${sendMs.toFixed(0)} ms); CPU % ${JSON.stringify(cpu)}`,
    );
    return {
      backend,
      n,
      ms,
      perSecond: perSecond(n, ms),
      cpu,
      sendMs,
      pairedCeiling,
      counted:
        backend === 'none'
          ? 'acks counted in the worker process, reported over IPC when all N were acked'
          : 'every AsyncResult.get() resolved (and its value checked)',
    };
  });
}

/** Runs `send` and resolves with the ms until the worker has acked `total` messages in all. */
export async function timedAcks(
  worker: Child,
  total: number,
  send: () => Promise<number>,
): Promise<number> {
  const reached = worker.next('reached', 600_000);
  const started = performance.now();
  worker.send({ type: 'notify-at', acked: total });
  await Promise.all([send(), reached]);
  return performance.now() - started;
}

/** Latency: sequential `delay().get()` round trips. */
export async function runLatency(
  ctx: BenchContext,
  backend: 'redis' | 'postgres',
): Promise<ConveyorLatencyResult> {
  return withRemoteWorker(ctx, backend, async (app) => {
    const client = app.client(Echo);
    for (let i = 0; i < 100; i += 1) await (await client.delay(i)).get({ timeoutMs: 30_000 });
    const samples: number[] = [];
    for (let i = 0; i < ctx.sizes.latency; i += 1) {
      const t = performance.now();
      const value = await (await client.delay(i)).get({ timeoutMs: 30_000 });
      samples.push(performance.now() - t);
      if (value !== i) throw new Error(`round trip ${i} returned ${String(value)}`);
    }
    const summary = summarize(samples);
    ctx.log(`latency ${backend}: p50 ${summary.p50.toFixed(2)} ms`);
    return { backend, ...summary };
  });
}
