import { describeTransportConformance } from '@conveyor/core/testing';
import {
  delayNamespace,
  removeDelayNamespace,
  removeQueues,
  testTransport,
  withRawChannel,
} from '../../../test/support/amqp-transport';

const namespace = delayNamespace();

afterAll(async () => {
  await removeDelayNamespace(namespace);
});

describeTransportConformance(
  'amqp',
  () => ({
    create: () => testTransport({ delayNamespace: namespace }),
    removeQueues,
    removeExchanges: (names) =>
      withRawChannel(async (channel) => {
        for (const name of names) await channel.deleteExchange(name);
      }),
  }),
  { capabilities: ['exchanges', 'queueAccess', 'prefetch'] },
);
