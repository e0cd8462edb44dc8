/**
 * A Conveyor worker in its own process, forked by the bench: AmqpTransport + the configured
 * result backend, `app.worker({ concurrency, prefetchMultiplier, handleSignals: false })`.
 * It connects at once, starts consuming on `start`, reports acks and memory on request.
 */
import 'reflect-metadata';
import { AckTarget, childConfig, fail, send, serveParent } from './child-support';
import { buildApp, experiment } from './conveyor-app';
import type { WorkerChildConfig } from './ipc';

async function main(): Promise<void> {
  const config = childConfig<WorkerChildConfig>('conveyor-worker');
  const { app, transport } = buildApp(config);
  const worker = app.worker({
    concurrency: config.concurrency,
    prefetchMultiplier: config.prefetchMultiplier,
    handleSignals: false,
    taskEvents: config.taskEvents ?? false,
    ...experiment().workerOptions,
  });
  let errors = 0;
  worker.on('worker-error', (error) => {
    errors += 1;
    if (errors <= 5) console.error(`[bench worker ${process.pid}] ${error.message}`);
  });
  const target = new AckTarget(() => transport.acked);
  transport.onAck(() => target.check());
  await app.transport.connect();
  await app.backend?.connect();
  serveParent({
    start: async () => {
      await worker.start();
      send({ type: 'started' });
    },
    count: () => transport.acked,
    extraStats: () => ({ events: worker.eventCounts }),
    notifyAt: (total) => target.set(total),
    stop: async () => {
      await worker.stop();
      await app.close();
    },
  });
}

main().catch(fail);
