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
    // Without the management API's extra figures, queueStats is what every transport reports.
    create: () => testTransport({ delayNamespace: namespace, managementUrl: false }),
    removeQueues,
    removeExchanges: (names) =>
      withRawChannel(async (channel) => {
        for (const name of names) await channel.deleteExchange(name);
      }),
  }),
  {
    capabilities: [
      'exchanges',
      'queueAdmin',
      'prefetch',
      'queueAccess',
      'delayStats',
      'reconnectNotice',
    ],
  },
);
