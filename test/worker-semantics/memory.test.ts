import { MemoryBroker, MemoryResultBackend, MemoryTransport } from '@conveyor/core';
import { describeWorkerSemantics } from '@conveyor/core/testing';
import { buildPackages } from '../support/faults/build';

// Task threads load the compiled @conveyor/core.
beforeAll(() => buildPackages(), 120_000);

describeWorkerSemantics('memory', () => {
  const broker = new MemoryBroker();
  const store = new MemoryResultBackend();
  return {
    transport: () => new MemoryTransport({ broker }),
    backend: () => new MemoryResultBackend({ sharedWith: store }),
    removeQueues: async () => {},
  };
});
