/**
 * The `events` scenario's receiver in its own process, as a monitor (Flower, `celery events`)
 * runs apart from the producers: an `EventReceiver` bound to `task.#` on its own AmqpTransport,
 * counting the events it gets; it starts consuming on `start` and reports the count and its CPU
 * on request.
 */
import 'reflect-metadata';
import { EventReceiver } from '@conveyor/core';
import { childConfig, fail, send, serveParent } from './child-support';
import { buildApp } from './conveyor-app';
import type { EventReceiverChildConfig } from './ipc';

async function main(): Promise<void> {
  const config = childConfig<EventReceiverChildConfig>('event-receiver');
  const { app } = buildApp({ ...config, backend: 'none' });
  await app.transport.connect();
  const receiver = new EventReceiver(app.transport, { routingKey: 'task.#', wakeup: false });
  let events = 0;
  receiver.on('*', () => (events += 1));
  serveParent({
    start: async () => {
      await receiver.start();
      send({ type: 'started' });
    },
    count: () => events,
    stop: async () => {
      await receiver.stop();
      await app.close();
    },
  });
}

main().catch(fail);
