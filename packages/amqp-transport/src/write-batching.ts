import type { Channel } from 'amqplib';
import { coalesceWrites } from '@conveyor/core/plugin';
import type { Writable } from 'node:stream';

/**
 * Lets every frame the channel's connection writes in this turn of the event loop leave in one
 * socket write (see `coalesceWrites`). amqplib writes each publish and each ack as its own frame,
 * its multiplexer one by one on a later `setImmediate`.
 */
export function batchWrites(channel: Channel): void {
  const stream = (channel as unknown as { connection?: { stream?: Writable } }).connection?.stream;
  if (stream && typeof stream.cork === 'function') coalesceWrites(stream);
}
