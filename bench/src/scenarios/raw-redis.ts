import { Child } from '../children';
import { measureCpu } from '../cpu';
import { rawConsumerConfig, type BenchContext } from '../context';
import { RawRedisRequester } from '../raw-redis';
import { perSecond } from '../stats';
import type { RawRedisResult, Throughput } from './results';

/**
 * A lower bound for the Redis throughput target: raw amqplib and ioredis doing the work of a
 * Redis-backed task (Celery's headers on the task, a subscription per task, the result stored
 * with SET and PUBLISH before the ack), with none of Conveyor's code, paired like the Conveyor
 * runs with a plain ceiling burst measured just before.
 */
export async function runRawRedis(
  ctx: BenchContext,
  ceiling: () => Promise<Throughput>,
  headers: Record<string, unknown>,
): Promise<RawRedisResult> {
  const pairedCeiling = await ceiling();
  const queue = ctx.names.rawQueue('redis-tasks');
  const keyPrefix = `${ctx.names.redisPrefix}celery-task-meta-`;
  const requester = await RawRedisRequester.open(ctx.urls.amqp, ctx.urls.redis, queue, keyPrefix);
  let child: Child | undefined;
  try {
    const config = rawConsumerConfig(ctx, queue, {
      reply: false,
      results: { redisUrl: ctx.urls.redis, keyPrefix },
    });
    child = await Child.start('raw-consumer-child.js', config, 'raw consumer (Redis results)');
    await child.startConsuming();
    const consumer = child;
    await requester.burst(ctx.sizes.warmup, headers);
    const n = ctx.sizes.throughput;
    const { value: ms, cpu } = await measureCpu(
      [{ label: 'consumer', cpuMs: async () => (await consumer.stats()).cpuMs }],
      async () => {
        const started = performance.now();
        await requester.burst(n, headers);
        return performance.now() - started;
      },
    );
    ctx.log(
      `raw amqplib + ioredis, Redis results: ${n} tasks in ${ms.toFixed(0)} ms; CPU % ${JSON.stringify(cpu)}`,
    );
    return { throughput: { n, ms, perSecond: perSecond(n, ms), cpu }, pairedCeiling };
  } finally {
    await child?.stop();
    await requester.close();
  }
}
