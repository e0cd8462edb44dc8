/**
 * The backlog's producer in its own process, so that its RSS is the producer's alone: a Conveyor
 * app (AmqpTransport + Redis backend) that sends `n` tasks on `start`, at most `window` in
 * flight, and reports when the broker has confirmed them all.
 */
import 'reflect-metadata';
import { childConfig, fail, send, serveParent } from './child-support';
import { buildApp } from './conveyor-app';
import { sendWindowed } from './context';
import type { ProducerChildConfig } from './ipc';

async function main(): Promise<void> {
  const config = childConfig<ProducerChildConfig>('conveyor-producer');
  const { app } = buildApp(config);
  await app.transport.connect();
  await app.backend?.connect();
  await app.transport.declareQueue({ name: config.queue });
  let sent = 0;
  serveParent({
    start: async () => {
      send({ type: 'started' });
      const ms = await sendWindowed(app, config.n, config.window);
      sent = config.n;
      send({ type: 'published', ms });
    },
    count: () => sent,
    stop: async () => {
      await app.close();
    },
  });
}

main().catch(fail);
