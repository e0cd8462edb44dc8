import type { Channel } from 'amqplib';
import type { Writable } from 'node:stream';

const corked = new WeakSet<Writable>();

/**
 * Lets every frame a connection writes in this turn of the event loop leave in one socket write.
 * amqplib queues each ack as its own frame and its multiplexer writes them one by one on a later
 * `setImmediate`, one syscall (and, with no-delay, one TCP segment) each; corking the socket until
 * the turn after that coalesces them. Costs at most one event-loop turn of latency.
 */
export function batchWrites(channel: Channel): void {
  const stream = (channel as unknown as { connection?: { stream?: Writable } }).connection?.stream;
  if (!stream || typeof stream.cork !== 'function' || corked.has(stream)) return;
  corked.add(stream);
  stream.cork();
  setImmediate(() =>
    setImmediate(() => {
      corked.delete(stream);
      stream.uncork();
    }),
  );
}
