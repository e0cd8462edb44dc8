import type { Transport } from '../transport/transport';
import { ClusterState, type ClusterStateOptions } from './cluster-state';
import { EventReceiver, type EventReceiverOptions } from './event-receiver';

/** A cluster state kept up to date by a running receiver; see {@link AppEvents.monitor}. */
export interface EventMonitor {
  readonly state: ClusterState;
  readonly receiver: EventReceiver;
  /** Stops the receiver (its queue goes with it); the state keeps what it knew. */
  stop(): Promise<void>;
}

/**
 * Celery events of an app's broker (`app.events`): receivers of the events every worker
 * (Conveyor or Python) and producer sends, and the cluster state built from them.
 */
export class AppEvents {
  constructor(private readonly transport: Transport) {}

  /** A receiver; call `on(type, handler)` then `start()`. */
  receiver(options: EventReceiverOptions = {}): EventReceiver {
    return new EventReceiver(this.transport, options);
  }

  /**
   * Starts a receiver that feeds a new {@link ClusterState}, and resolves once it listens (and
   * has asked every worker for a heartbeat, so the state fills at once).
   */
  async monitor(options: EventReceiverOptions & ClusterStateOptions = {}): Promise<EventMonitor> {
    const state = new ClusterState(options);
    const receiver = this.receiver(options);
    receiver.on('*', (event) => state.event(event));
    await receiver.start();
    return { state, receiver, stop: () => receiver.stop() };
  }
}
