import { buildApp } from '../conveyor-app';
import { appSettings, sendAllThenGet, type BenchContext } from '../context';
import { rawPublishConsumeAck } from '../raw-amqp';
import { perSecond } from '../stats';
import type { MemoryBackendResult } from './results';

/**
 * The AMQP transport with the memory backend: producer and worker in this one process (a memory
 * backend cannot cross processes), N tasks sent at once then every `get()` awaited; beside raw
 * amqplib doing the same publish (confirmed, persistent) / consume (same prefetch) / ack in one
 * process.
 */
export async function runMemoryBackend(ctx: BenchContext): Promise<MemoryBackendResult> {
  const n = ctx.sizes.memory;
  const warm = ctx.sizes.warmup;

  const queue = ctx.names.taskQueue('memory');
  const { app } = buildApp(appSettings(ctx, queue, 'memory'));
  const worker = app.worker({
    concurrency: ctx.concurrency,
    prefetchMultiplier: ctx.prefetchMultiplier,
    handleSignals: false,
  });
  let conveyorMs: number;
  try {
    await worker.start();
    await sendAllThenGet(app, warm, 0);
    conveyorMs = await sendAllThenGet(app, n, warm);
  } finally {
    await worker.stop();
    await app.close();
  }
  ctx.log(`memory backend: ${n} tasks in ${conveyorMs.toFixed(0)} ms`);

  await rawPublishConsumeAck(
    ctx.urls.amqp,
    ctx.names.rawQueue('memory-warmup'),
    warm,
    ctx.prefetch,
  );
  const rawMs = await rawPublishConsumeAck(
    ctx.urls.amqp,
    ctx.names.rawQueue('memory'),
    n,
    ctx.prefetch,
  );
  ctx.log(`memory backend raw: ${n} messages in ${rawMs.toFixed(0)} ms`);
  return {
    conveyor: { n, ms: conveyorMs, perSecond: perSecond(n, conveyorMs) },
    raw: { n, ms: rawMs, perSecond: perSecond(n, rawMs) },
  };
}
