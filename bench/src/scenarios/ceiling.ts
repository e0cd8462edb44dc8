import 'reflect-metadata';
import {
  Conveyor,
  MemoryTransport,
  type PublishOptions,
  type TransportMessage,
} from '@conveyor/core';
import { Echo } from '../bench-tasks';
import { Child } from '../children';
import { measureCpu } from '../cpu';
import { rawConsumerConfig, type BenchContext } from '../context';
import { RawRequester } from '../raw-amqp';
import { perSecond, summarize } from '../stats';
import type { NagleResult, Throughput } from './results';

/**
 * The ceiling: raw amqplib doing Conveyor's work. N persistent messages on a confirm channel,
 * a consumer in another process with the same prefetch acks each and publishes a reply, the
 * producer collects the replies. It stays open for the whole run, so that every Conveyor
 * throughput measurement is paired with a ceiling measured just before it (the machine is
 * noisy; a ratio of two measurements minutes apart would mostly measure the noise).
 */
export class RawCeiling {
  private constructor(
    private readonly ctx: BenchContext,
    private readonly requester: RawRequester,
    private readonly child: Child,
  ) {}

  static async open(ctx: BenchContext, noDelay = true): Promise<RawCeiling> {
    const queue = ctx.names.rawQueue('requests');
    const replies = ctx.names.rawQueue('replies');
    const requester = await RawRequester.open(ctx.urls.amqp, noDelay, queue, replies);
    try {
      const config = rawConsumerConfig(ctx, queue, { noDelay, reply: true });
      const child = await Child.start(
        'raw-consumer-child.js',
        config,
        `raw consumer (noDelay ${noDelay})`,
      );
      await child.startConsuming();
      return new RawCeiling(ctx, requester, child);
    } catch (error) {
      await requester.close();
      throw error;
    }
  }

  /** A warm-up burst, then N request/replies at once; `headers` as in {@link RawRequester.headers}. */
  async burst(headers?: Record<string, unknown>): Promise<Throughput> {
    this.requester.headers = headers;
    try {
      await this.requester.burst(this.ctx.sizes.warmup);
      const n = this.ctx.sizes.throughput;
      const { value: ms, cpu } = await measureCpu(
        [{ label: 'consumer', cpuMs: async () => (await this.child.stats()).cpuMs }],
        async () => {
          const started = performance.now();
          await this.requester.burst(n);
          return performance.now() - started;
        },
      );
      this.ctx.log(
        `ceiling${headers ? ' with Celery headers' : ''}: ${n} round trips in ${ms.toFixed(0)} ms; CPU % ${JSON.stringify(cpu)}`,
      );
      return { n, ms, perSecond: perSecond(n, ms), cpu };
    } finally {
      this.requester.headers = undefined;
    }
  }

  /** `n` sequential request/reply round trips (after 100 unmeasured ones); ms each. */
  async roundTrips(n: number, warmup = 100): Promise<number[]> {
    for (let i = 0; i < warmup; i += 1) await this.requester.roundTrip(`w${i}`);
    const samples: number[] = [];
    for (let i = 0; i < n; i += 1) {
      const t = performance.now();
      await this.requester.roundTrip(`l${i}`);
      samples.push(performance.now() - t);
    }
    return samples;
  }

  async close(): Promise<void> {
    await this.child.stop();
    await this.requester.close();
  }
}

/** The headers of a real Conveyor task message for `bench.echo(1)`, captured from an in-memory app. */
export async function conveyorTaskHeaders(): Promise<Record<string, unknown>> {
  let captured: TransportMessage | undefined;
  class Capture extends MemoryTransport {
    override async publish(message: TransportMessage, _options: PublishOptions): Promise<void> {
      captured = message;
    }
  }
  const app = new Conveyor({ broker: new Capture(), backend: null, tasks: [Echo] });
  await app.client(Echo).delay(1);
  await app.close();
  if (!captured) throw new Error('no task message was captured');
  const headers: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(captured.headers))
    if (value !== undefined) headers[key] = value;
  return headers;
}

/** The same sequential round trips with TCP no-delay off on every connection (Nagle's algorithm on). */
export async function runNagle(ctx: BenchContext): Promise<NagleResult> {
  const ceiling = await RawCeiling.open(ctx, false);
  try {
    return { noDelayOff: summarize(await ceiling.roundTrips(ctx.sizes.nagle, 5)) };
  } finally {
    await ceiling.close();
  }
}
