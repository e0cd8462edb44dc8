import {
  deadLetterQueueName,
  MemoryBroker,
  MemoryTransport,
  type Delivery,
  type TransportMessage,
} from '@conveyor/core';

/** Reads what sits in a memory broker's queue without consuming it. */
export function queued(transport: MemoryTransport, queue: string): TransportMessage[] {
  return (transport.broker.queue(queue)?.peek() ?? []).map((m) => m.message);
}

/** The dead letters of a queue. */
export function deadLetters(transport: MemoryTransport, queue: string): TransportMessage[] {
  return queued(transport, deadLetterQueueName(queue));
}

/** Two transports on one broker: a producer's and a worker's connection. */
export function sharedBroker(): { broker: MemoryBroker; connect: () => MemoryTransport } {
  const broker = new MemoryBroker();
  return { broker, connect: () => new MemoryTransport({ broker }) };
}

export type { Delivery };
