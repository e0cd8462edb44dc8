import type { ChannelModel } from 'amqplib';
import { closeWithin } from '@conveyor/core/plugin';
import type { Writable } from 'node:stream';

/**
 * How long a channel or connection close may wait for the broker's CloseOk: amqplib leaves the
 * close unsettled when the socket dies first (see `closeWithin`).
 */
export const CLOSE_TIMEOUT_MS = 1_000;

/** Closes a connection within the bound, then drops its socket if the broker never answered. */
export async function closeConnection(model: ChannelModel): Promise<void> {
  if (await closeWithin(() => model.close(), CLOSE_TIMEOUT_MS)) return;
  (model.connection as unknown as { stream?: Writable }).stream?.destroy();
}
