import { MemoryBroker, MemoryResultBackend, MemoryTransport } from '@conveyor/core';
import { describeBackendConformance, describeTransportConformance } from '@conveyor/core/testing';

describeTransportConformance(
  'memory',
  () => {
    const broker = new MemoryBroker();
    return {
      create: () => new MemoryTransport({ broker }),
      removeQueues: async () => {},
    };
  },
  { capabilities: ['exchanges', 'queueAdmin', 'queueAccess', 'prefetch'] },
);

describeBackendConformance(
  'memory',
  () => {
    const store = new MemoryResultBackend();
    return { create: () => new MemoryResultBackend({ sharedWith: store }) };
  },
  { capabilities: ['counters', 'leases'] },
);
