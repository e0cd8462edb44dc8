import { EventReceiver, type Transport } from '@conveyor/core';
import { Child } from '../children';
import { appSettings, sendWindowed, type BenchContext } from '../context';
import { cpuBetween, serviceCpuMs } from '../cpu';
import { perSecond } from '../stats';
import { timedAcks, withRemoteWorker } from './conveyor-remote';
import type { EventsReceiverPlacement, EventsResult, Throughput } from './results';

/** Alternating pairs of measurements (off, on); the report gives the medians. */
const PAIRS = 3;

/**
 * Where the receiver runs, from `BENCH_EVENTS_RECEIVER`: in a process of its own by default (as a
 * monitor runs apart from the producers), `inline` in the bench process beside the producer (the
 * first design of this scenario), `0` not at all (no queue bound: the sending side alone).
 */
export function receiverPlacement(
  value = process.env.BENCH_EVENTS_RECEIVER,
): EventsReceiverPlacement {
  if (value === '0' || value === 'none') return 'none';
  if (value === 'inline') return 'inline';
  if (value === undefined || value === '' || value === 'process') return 'process';
  throw new Error(`BENCH_EVENTS_RECEIVER: expected process, inline or 0, got '${value}'`);
}

/**
 * Task events: the no-backend throughput (worker acks counted, as in `throughput none`) with
 * the worker's task events off, then on with a receiver bound to `task.#` and consuming them,
 * in three alternating pairs so that drift on a shared machine hits both sides.
 */
export async function runEvents(ctx: BenchContext): Promise<EventsResult> {
  const receiver = receiverPlacement();
  const off: Throughput[] = [];
  const on: Throughput[] = [];
  let eventsReceived = 0;
  const workerEvents = { sent: 0, dropped: 0 };
  for (let pair = 0; pair < PAIRS; pair += 1) {
    off.push((await measure(ctx, false, 'none', pair)).throughput);
    const withEvents = await measure(ctx, true, receiver, pair);
    on.push(withEvents.throughput);
    eventsReceived += withEvents.events;
    workerEvents.sent += withEvents.workerEvents?.sent ?? 0;
    workerEvents.dropped += withEvents.workerEvents?.dropped ?? 0;
  }
  const median = (list: Throughput[]): number =>
    [...list].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(list.length / 2)]!.perSecond;
  const result = {
    receiver,
    off,
    on,
    medianOff: median(off),
    medianOn: median(on),
    eventsReceived,
    workerEvents,
  };
  ctx.log(
    `events: median ${result.medianOn.toFixed(0)}/s with task events (receiver: ${receiver}), ${result.medianOff.toFixed(0)}/s without (${((result.medianOn / result.medianOff) * 100).toFixed(0)}%)`,
  );
  return result;
}

/** Counts the events of one measurement, wherever the receiver runs. */
interface ReceiverHandle {
  received(): Promise<number>;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startReceiver(
  ctx: BenchContext,
  placement: EventsReceiverPlacement,
  transport: Transport,
  label: string,
): Promise<ReceiverHandle | undefined> {
  if (placement === 'none') return undefined;
  if (placement === 'inline') return startInlineReceiver(transport);
  const child = await Child.start(
    'event-receiver-child.js',
    { kind: 'event-receiver', ...appSettings(ctx, label, 'none') },
    'event receiver',
  );
  try {
    await child.startConsuming();
  } catch (error) {
    child.kill();
    throw error;
  }
  return {
    received: async () => (await child.stats()).acked,
    cpuMs: async () => (await child.stats()).cpuMs,
    stop: () => child.stop(),
  };
}

async function startInlineReceiver(transport: Transport): Promise<ReceiverHandle> {
  const receiver = new EventReceiver(transport, { routingKey: 'task.#', wakeup: false });
  let events = 0;
  receiver.on('*', () => (events += 1));
  await receiver.start();
  return {
    received: async () => events,
    // Its CPU is the bench process's, counted as the producer's.
    cpuMs: async () => 0,
    stop: () => receiver.stop(),
  };
}

async function measure(
  ctx: BenchContext,
  taskEvents: boolean,
  placement: EventsReceiverPlacement,
  pair: number,
): Promise<{
  throughput: Throughput;
  events: number;
  workerEvents?: { sent: number; dropped: number };
}> {
  const label = `events-${taskEvents ? 'on' : 'off'}-${pair}`;
  return withRemoteWorker(
    ctx,
    'none',
    async (app, worker) => {
      const receiver = await startReceiver(ctx, placement, app.transport, label);
      try {
        const n = ctx.sizes.throughput;
        const warm = ctx.sizes.warmup;
        await timedAcks(worker, warm, () => sendWindowed(app, warm, warm));
        const before = await cpuReadings(worker, receiver);
        const ms = await timedAcks(worker, warm + n, () => sendWindowed(app, n, n));
        const after = await cpuReadings(worker, receiver);
        const { events: workerEvents } = await worker.stats();
        const events = (await receiver?.received()) ?? 0;
        // CPU per task, by process: unlike the rate, other load on the machine barely moves the
        // node processes' figures (RabbitMQ's serves other work on the machine too).
        const cpuUsPerTask: Record<string, number> = {};
        for (const [name, used] of Object.entries(cpuBetween(before, after))) {
          if (name === 'receiver' && !receiver) continue;
          cpuUsPerTask[name] = Math.round((used * 10_000) / n) / 10;
        }
        const workerCpuUsPerTask = cpuUsPerTask.worker!;
        ctx.log(
          `events ${taskEvents ? 'on' : 'off'} (pair ${pair + 1}): ${n} tasks in ${ms.toFixed(0)} ms, CPU µs/task ${JSON.stringify(cpuUsPerTask)}; worker events ${JSON.stringify(workerEvents)}, received ${events}`,
        );
        return {
          throughput: { n, ms, perSecond: perSecond(n, ms), workerCpuUsPerTask, cpuUsPerTask },
          events,
          workerEvents,
        };
      } finally {
        await receiver?.stop();
      }
    },
    { taskEvents, label },
  );
}

/** CPU ms so far of the worker, the receiver, this process and the services. */
async function cpuReadings(
  worker: Child,
  receiver: ReceiverHandle | undefined,
): Promise<Record<string, number>> {
  const own = process.cpuUsage();
  const [workerMs, receiverMs] = await Promise.all([
    worker.stats().then((s) => s.cpuMs),
    receiver?.cpuMs() ?? Promise.resolve(0),
  ]);
  return {
    worker: workerMs,
    producer: (own.user + own.system) / 1000,
    receiver: receiverMs,
    ...serviceCpuMs(),
  };
}
