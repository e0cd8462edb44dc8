import { EventReceiver } from '@conveyor/core';
import { sendWindowed, type BenchContext } from '../context';
import { perSecond } from '../stats';
import { timedAcks, withRemoteWorker } from './conveyor-remote';
import type { EventsResult, Throughput } from './results';

/** Alternating pairs of measurements (off, on); the report gives the medians. */
const PAIRS = 3;

/**
 * Task events: the no-backend throughput (worker acks counted, as in `throughput none`) with
 * the worker's task events off, then on with a receiver bound to `task.#` and consuming them in
 * this process, in three alternating pairs so that drift on a shared machine hits both sides.
 */
export async function runEvents(ctx: BenchContext): Promise<EventsResult> {
  const off: Throughput[] = [];
  const on: Throughput[] = [];
  let eventsReceived = 0;
  const workerEvents = { sent: 0, dropped: 0 };
  for (let pair = 0; pair < PAIRS; pair += 1) {
    off.push((await measure(ctx, false, pair)).throughput);
    const withEvents = await measure(ctx, true, pair);
    on.push(withEvents.throughput);
    eventsReceived += withEvents.events;
    workerEvents.sent += withEvents.workerEvents?.sent ?? 0;
    workerEvents.dropped += withEvents.workerEvents?.dropped ?? 0;
  }
  const median = (list: Throughput[]): number =>
    [...list].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(list.length / 2)]!.perSecond;
  const result = {
    off,
    on,
    medianOff: median(off),
    medianOn: median(on),
    eventsReceived,
    workerEvents,
  };
  ctx.log(
    `events: median ${result.medianOn.toFixed(0)}/s with task events and a receiver, ${result.medianOff.toFixed(0)}/s without (${((result.medianOn / result.medianOff) * 100).toFixed(0)}%)`,
  );
  return result;
}

async function measure(
  ctx: BenchContext,
  taskEvents: boolean,
  pair: number,
): Promise<{
  throughput: Throughput;
  events: number;
  workerEvents?: { sent: number; dropped: number };
}> {
  return withRemoteWorker(
    ctx,
    'none',
    async (app, worker) => {
      let events = 0;
      const receiver =
        taskEvents && process.env.BENCH_EVENTS_RECEIVER !== '0'
          ? new EventReceiver(app.transport, { routingKey: 'task.#', wakeup: false })
          : undefined;
      receiver?.on('*', () => (events += 1));
      await receiver?.start();
      try {
        const n = ctx.sizes.throughput;
        const warm = ctx.sizes.warmup;
        await timedAcks(worker, warm, () => sendWindowed(app, warm, warm));
        const cpuBefore = (await worker.stats()).cpuMs;
        const ms = await timedAcks(worker, warm + n, () => sendWindowed(app, n, n));
        const { events: workerEvents, cpuMs } = await worker.stats();
        // The worker's own CPU per task: unlike the rate, other load on the machine barely moves it.
        const workerCpuUsPerTask = ((cpuMs - cpuBefore) * 1000) / n;
        ctx.log(
          `events ${taskEvents ? 'on' : 'off'} (pair ${pair + 1}): ${n} tasks in ${ms.toFixed(0)} ms, worker CPU ${workerCpuUsPerTask.toFixed(1)} µs/task; worker events ${JSON.stringify(workerEvents)}, received ${events}`,
        );
        return {
          throughput: { n, ms, perSecond: perSecond(n, ms), workerCpuUsPerTask },
          events,
          workerEvents,
        };
      } finally {
        await receiver?.stop();
      }
    },
    { taskEvents, label: `events-${taskEvents ? 'on' : 'off'}-${pair}` },
  );
}
