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
    create: () => testTransport({ delayNamespace: namespace }),
    removeQueues,
  }),
  { capabilities: ['queueAccess'] },
);
