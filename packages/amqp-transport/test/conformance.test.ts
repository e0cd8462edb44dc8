import { describeTransportConformance } from '@conveyor/core/testing';
import {
  delayNamespace,
  removeDelayNamespace,
  removeQueues,
  testTransport,
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
  }),
  { capabilities: ['queueAdmin', 'queueAccess', 'delayStats', 'reconnectNotice'] },
);
