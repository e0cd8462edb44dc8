import type { Writable } from 'node:stream';

const corked = new WeakSet<Writable>();

/**
 * Lets everything written to `stream` from now until the turn after the next of the event loop
 * leave in one socket write (`writev`). Client libraries write each frame or command as they make
 * it: on a busy connection that is one syscall, and with TCP no-delay one segment, per message,
 * which on a loaded machine costs more than the message. Corking for two turns also collects
 * writes that a library defers with `setImmediate` (amqplib's multiplexer does). Costs at most
 * two turns of latency.
 *
 * A utility for transports and result backends: call it before writing; calls while the stream
 * is already corked do nothing.
 */
export function coalesceWrites(stream: Writable): void {
  if (corked.has(stream) || stream.destroyed) return;
  corked.add(stream);
  stream.cork();
  setImmediate(() =>
    setImmediate(() => {
      corked.delete(stream);
      stream.uncork();
    }),
  );
}
