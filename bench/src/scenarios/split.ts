import { connect } from 'amqplib';
import { Child } from '../children';
import { measureCpu } from '../cpu';
import { buildApp } from '../conveyor-app';
import {
  appSettings,
  rawConsumerConfig,
  sendWindowed,
  workerConfig,
  type BenchContext,
} from '../context';
import { publishBurst } from '../raw-amqp';
import { perSecond } from '../stats';
import { conveyorTaskHeaders } from './ceiling';
import type { SplitResult, Throughput } from './results';

type Side = 'raw' | 'conveyor';

/**
 * Where Conveyor's time goes, split between producer and worker: the one-way pipeline (N tasks
 * sent at once, time until the consumer has acked all N, no results) with each side either raw
 * amqplib or Conveyor, in every combination. The raw producer sends a Conveyor task message's
 * Celery headers and body (so a Conveyor worker runs it) on a confirm channel; the raw consumer
 * is the ceiling's, in another process with the same prefetch, acking without replying. Raw to
 * raw is the protocol's own cost; each other cell charges the difference to the side that
 * changed.
 */
export async function runSplit(ctx: BenchContext): Promise<SplitResult> {
  const queue = ctx.names.taskQueue('split');
  const { app } = buildApp(appSettings(ctx, queue, 'none'));
  const connection = await connect(ctx.urls.amqp, { noDelay: true });
  const result: Partial<Record<`${Side}->${Side}`, Throughput>> = {};
  try {
    await app.transport.connect();
    await app.transport.declareQueue({ name: queue });
    const channel = await connection.createConfirmChannel();
    const headers = await conveyorTaskHeaders();
    const producers: Record<Side, (n: number, offset: number) => Promise<unknown>> = {
      raw: (n, offset) =>
        publishBurst(channel, queue, n, (i) => {
          const id = `split-${offset + i}`;
          return {
            body: Buffer.from(
              JSON.stringify([
                [i],
                {},
                { callbacks: null, errbacks: null, chain: null, chord: null },
              ]),
            ),
            options: {
              headers: { ...headers, id, root_id: id },
              correlationId: id,
              contentType: 'application/json',
              contentEncoding: 'utf-8',
            },
          };
        }),
      conveyor: (n) => sendWindowed(app, n, n),
    };
    for (const consumerSide of ['raw', 'conveyor'] as const) {
      const consumer = await startConsumer(ctx, consumerSide, queue);
      try {
        for (const producerSide of ['raw', 'conveyor'] as const) {
          const measure = async (n: number, offset: number): Promise<Throughput> => {
            const acked = (await consumer.stats()).acked;
            const reached = consumer.next('reached', 600_000);
            const { value: ms, cpu } = await measureCpu(
              [
                {
                  label: consumerSide === 'raw' ? 'consumer' : 'worker',
                  cpuMs: async () => (await consumer.stats()).cpuMs,
                },
              ],
              async () => {
                const started = performance.now();
                consumer.send({ type: 'notify-at', acked: acked + n });
                await Promise.all([producers[producerSide](n, offset), reached]);
                return performance.now() - started;
              },
            );
            return { n, ms, perSecond: perSecond(n, ms), cpu };
          };
          await measure(ctx.sizes.warmup, 0);
          const measured = await measure(ctx.sizes.throughput, ctx.sizes.warmup);
          ctx.log(
            `split ${producerSide} producer -> ${consumerSide} consumer: ${measured.n} in ${measured.ms.toFixed(0)} ms; CPU % ${JSON.stringify(measured.cpu)}`,
          );
          result[`${producerSide}->${consumerSide}`] = measured;
        }
      } finally {
        await consumer.stop();
      }
    }
  } finally {
    await connection.close().catch(() => undefined);
    await app.close();
  }
  return result as SplitResult;
}

async function startConsumer(ctx: BenchContext, side: Side, queue: string): Promise<Child> {
  const child =
    side === 'raw'
      ? await Child.start(
          'raw-consumer-child.js',
          rawConsumerConfig(ctx, queue, { reply: false }),
          'raw consumer (split)',
        )
      : await Child.start(
          'worker-child.js',
          workerConfig(ctx, queue, 'none'),
          'conveyor worker (split)',
        );
  await child.startConsuming();
  return child;
}
