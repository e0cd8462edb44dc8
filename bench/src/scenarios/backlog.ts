import { Child } from '../children';
import { appSettings, workerConfig, type BenchContext } from '../context';
import { perSecond } from '../stats';
import type { BacklogResult, ProcessMemory } from './results';

/** Tasks in flight while the backlog is published. */
const PUBLISH_WINDOW = 2_000;
/** How often the workers are asked for their ack counts while draining. */
const POLL_MS = 50;
const WORKERS = 2;

/**
 * Backlog: N tasks published first (Redis backend) by a producer process, then drained by two
 * worker processes. Drain time runs from telling both workers to start consuming to the poll
 * that sees all N acked. RSS of the producer and of each worker (`process.memoryUsage()` over
 * IPC) at the start (all connected, nothing published) and at the end (all drained); a worker's
 * peak is the largest RSS seen by the drain polls, the producer's the larger of after-publish
 * and end.
 */
export async function runBacklog(ctx: BenchContext): Promise<BacklogResult> {
  const n = ctx.sizes.backlog;
  const queue = ctx.names.taskQueue('backlog');
  const workers: Child[] = [];
  let producer: Child | undefined;
  try {
    producer = await Child.start(
      'producer-child.js',
      {
        ...appSettings(ctx, queue, 'redis'),
        backend: 'redis',
        kind: 'conveyor-producer',
        n,
        window: PUBLISH_WINDOW,
      },
      'backlog producer',
    );
    for (let i = 0; i < WORKERS; i += 1) {
      workers.push(
        await Child.start(
          'worker-child.js',
          workerConfig(ctx, queue, 'redis'),
          `backlog worker ${i + 1}`,
        ),
      );
    }
    const producerStart = await producer.stats();
    const workerStart = await Promise.all(workers.map((w) => w.stats()));
    const peaks = workerStart.map((s) => s.rss);

    const published = producer.next('published', 600_000);
    await producer.startConsuming();
    const publishMs = (await published).ms;
    const producerAfterPublish = await producer.stats();
    ctx.log(`backlog: ${n} tasks published in ${publishMs.toFixed(0)} ms`);

    const started = performance.now();
    await Promise.all(workers.map((w) => w.startConsuming()));
    let acked: number[] = [];
    for (;;) {
      const stats = await Promise.all(workers.map((w) => w.stats()));
      stats.forEach((s, i) => (peaks[i] = Math.max(peaks[i]!, s.rss)));
      acked = stats.map((s) => s.acked);
      if (acked.reduce((a, b) => a + b, 0) >= n) break;
      if (performance.now() - started > 600_000)
        throw new Error(`backlog not drained in 10 minutes (${acked.join(' + ')} acked)`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const drainMs = performance.now() - started;
    ctx.log(`backlog: drained by ${WORKERS} workers in ${drainMs.toFixed(0)} ms`);
    const producerEnd = await producer.stats();
    const workerEnd = await Promise.all(workers.map((w) => w.stats()));
    const memory: ProcessMemory[] = [
      {
        label: 'producer',
        rssStart: producerStart.rss,
        rssEnd: producerEnd.rss,
        rssPeak: Math.max(producerAfterPublish.rss, producerEnd.rss),
        heapUsedStart: producerStart.heapUsed,
        heapUsedEnd: producerEnd.heapUsed,
      },
      ...workers.map((_, i) => ({
        label: `worker ${i + 1}`,
        rssStart: workerStart[i]!.rss,
        rssEnd: workerEnd[i]!.rss,
        rssPeak: Math.max(peaks[i]!, workerEnd[i]!.rss),
        heapUsedStart: workerStart[i]!.heapUsed,
        heapUsedEnd: workerEnd[i]!.heapUsed,
      })),
    ];
    return {
      n,
      workers: WORKERS,
      publishMs,
      publishPerSecond: perSecond(n, publishMs),
      drainMs,
      drainPerSecond: perSecond(n, drainMs),
      perWorker: acked,
      memory,
    };
  } finally {
    await Promise.all([...workers, ...(producer ? [producer] : [])].map((c) => c.stop()));
  }
}
