import {
  CONTROL_EXCHANGE,
  REPLY_EXCHANGE,
  decodeControlRequest,
  encodeControlReply,
  isAddressedTo,
} from '../protocol/control-message';
import { hasCapability } from '../capability/capability';
import type { Consumer, Transport, TransportMessage } from '../transport/transport';
import { runControlCommand, type ControlledWorker } from './control-commands';

/**
 * A worker's end of Celery's mailbox (kombu's pidbox `Node`): it receives the commands broadcast
 * on `celery.pidbox`, runs those addressed to this worker (no destination, or its hostname in
 * the destination, or matching the pattern), and replies to those that ask, to their `reply_to`
 * exchange and routing key with their ticket. Replies are fire-and-forget, as kombu's are.
 */
export class PidboxNode {
  private consumer?: Consumer;
  /** Replies that could not be sent (no exchanges capability, connection down). */
  repliesDropped = 0;

  constructor(
    private readonly transport: Transport,
    private readonly worker: ControlledWorker,
    /** Requests whose replies go to this routing key are ignored (the worker's own pings). */
    private readonly ownReplyKey?: string,
  ) {}

  /** Declares the reply exchange (when the transport can reply) and starts listening. */
  async start(): Promise<void> {
    if (hasCapability(this.transport, 'exchanges')) {
      await this.transport.declareExchange(REPLY_EXCHANGE);
    }
    this.consumer = await this.transport.subscribeBroadcast(CONTROL_EXCHANGE, (message) =>
      this.receive(message),
    );
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.cancel();
  }

  /** Handles one mailbox message; garbage and commands for other workers are ignored. */
  receive(message: TransportMessage): void {
    // Clients rarely have a meaningful clock: move ours forward, as Celery's Pidbox does.
    this.worker.clock.adjust(message.headers.clock);
    const request = decodeControlRequest(message);
    if (!request || !isAddressedTo(request, this.worker.hostname)) return;
    if (this.ownReplyKey && request.replyTo?.routingKey === this.ownReplyKey) return;
    const reply = runControlCommand(this.worker, request);
    if (!request.ticket || !request.replyTo) return;
    if (!hasCapability(this.transport, 'exchanges')) {
      this.repliesDropped += 1;
      return;
    }
    this.transport
      .publishToExchange(
        request.replyTo.exchange,
        request.replyTo.routingKey,
        encodeControlReply(
          this.worker.hostname,
          reply ?? null,
          request.ticket,
          this.worker.clock.forward(),
        ),
      )
      .catch(() => (this.repliesDropped += 1));
  }
}
