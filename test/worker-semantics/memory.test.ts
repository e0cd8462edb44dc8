import { MemoryBroker, MemoryResultBackend, MemoryTransport } from '@conveyor/core';
import { describeWorkerSemantics } from './worker-semantics';

describeWorkerSemantics('memory', () => {
  const broker = new MemoryBroker();
  const store = new MemoryResultBackend();
  return {
    transport: () => new MemoryTransport({ broker }),
    backend: () => new MemoryResultBackend({ sharedWith: store }),
    removeQueues: async () => {},
  };
});
