import { Control } from '../control/control-client';
import type { ControlledWorker } from '../control/control-commands';
import { PidboxNode } from '../control/pidbox-node';
import { ConfigError } from '../errors';
import { LamportClock } from '../protocol/lamport-clock';
import { hasCapability } from '../capability/capability';
import type { Transport } from '../transport/transport';
import { EventDispatcher } from './event-dispatcher';
import { TaskEvents } from './task-events';
import { WorkerHeart, type HeartbeatCounts } from './worker-heart';

/** How a worker shows itself to the cluster. */
export interface WorkerPresenceOptions {
  hostname: string;
  /** Send task events from the start (`-E`); `enable_events` turns them on later. */
  taskEvents: boolean;
  /** Send worker-online/heartbeat/offline (`--without-heartbeat` turns them off). */
  heartbeat: boolean;
  /** Between heartbeats. @defaultValue 2_000 */
  heartbeatIntervalMs?: number;
}

/**
 * Task events per batch message. Celery's workers send at most 24; receivers take a list of any
 * length, and ten times as many cost the worker about 10 µs less CPU per task (three events) and
 * a receiver about 5 µs less in the bench's `events` scenario: each message costs a publish on
 * this side, a delivery on the receiver's and the broker's routing, whatever its size. Batches
 * still leave at least every 100 ms.
 */
const TASK_EVENT_BATCH = 240;

/**
 * What makes a worker visible to Celery's tools and to Conveyor's: its events on `celeryev`
 * (worker-online, a heartbeat every 2 s, worker-offline; task events when enabled) and its node
 * of the `celery.pidbox` mailbox, which answers remote control. A transport without the
 * `exchanges` capability still gets remote control without replies (revoke); events and replies
 * are then off, which `start()` reports once through `warn`.
 */
export class WorkerPresence {
  readonly clock = new LamportClock();
  readonly taskEvents: TaskEvents;
  private readonly dispatcher: EventDispatcher;
  private node?: PidboxNode;
  private readonly control: Control;
  private heart?: WorkerHeart;
  private offline = false;
  /** The start under way or done; {@link stop} waits for it, to stop what it brought up. */
  private starting?: Promise<void>;

  constructor(
    private readonly transport: Transport,
    private readonly counts: () => HeartbeatCounts,
    private readonly options: WorkerPresenceOptions,
    private readonly warn: (error: Error) => void,
  ) {
    this.dispatcher = new EventDispatcher(transport, {
      hostname: options.hostname,
      clock: this.clock,
      groups: options.taskEvents ? ['worker', 'task'] : ['worker'],
      // Task events in batches, as Celery's workers send them: a message per batch, not four
      // per task, keeps the broker's cost of events small.
      bufferGroups: ['task'],
      bufferLimit: TASK_EVENT_BATCH,
    });
    this.taskEvents = new TaskEvents(this.dispatcher);
    if (options.heartbeat) {
      this.heart = new WorkerHeart(this.dispatcher, counts, options.heartbeatIntervalMs);
    }
    this.control = new Control(transport);
  }

  /** Whether task events are sent now. */
  get sendsTaskEvents(): boolean {
    return this.dispatcher.sends('task');
  }

  /** Events sent and dropped so far. */
  get eventCounts(): { sent: number; dropped: number } {
    return this.dispatcher.stats;
  }

  /**
   * Opens the event exchange, starts answering remote control for `worker`, sends worker-online
   * and starts the heartbeat; then, in the background, warns if another node already answers to
   * this hostname (as Celery warns of duplicate node names). For `clock`, `sendHeartbeat` and
   * `setTaskEvents`, `worker` should hand over to this presence's {@link clock}, {@link beat} and
   * {@link setTaskEvents}.
   */
  start(worker: ControlledWorker): Promise<void> {
    this.starting = this.bringUp(worker);
    return this.starting;
  }

  private async bringUp(worker: ControlledWorker): Promise<void> {
    if (hasCapability(this.transport, 'exchanges')) {
      await this.dispatcher.open();
    } else {
      this.warn(
        new ConfigError(
          `${this.transport.constructor.name} lacks the 'exchanges' capability: worker ${this.options.hostname} sends no events and answers no inspect commands (revoke still works)`,
        ),
      );
    }
    this.node = new PidboxNode(this.transport, worker, this.control.replyKey);
    await this.node.start();
    // Gone offline while starting (a stop): no worker-online and no heartbeats after it.
    if (this.offline) return;
    this.heart?.start();
    if (hasCapability(this.transport, 'exchanges')) void this.checkDuplicateHostname();
  }

  /** Sends the task events still batched. */
  flush(): void {
    this.dispatcher.flush();
  }

  /**
   * Sends the task events still batched and worker-offline, and stops the heartbeat. Remote
   * control still answers, so a stopping worker can be told to revoke (and terminate) the tasks
   * it waits for.
   */
  goOffline(): void {
    this.offline = true;
    this.dispatcher.flush();
    this.heart?.stop();
  }

  /** Goes offline if it has not yet, and stops answering remote control. */
  async stop(): Promise<void> {
    this.goOffline();
    await this.starting?.catch(() => undefined);
    await this.node?.stop();
    await this.control.close().catch(() => undefined);
  }

  /**
   * Sends a heartbeat now (the `heartbeat` command; Celery's event receivers ask at start).
   * Not once offline: monitors would take the stopping worker for alive again.
   */
  beat(): void {
    if (this.offline) return;
    (this.heart ?? new WorkerHeart(this.dispatcher, this.counts)).beat();
  }

  /** Turns task events on or off; true if that changed anything. */
  setTaskEvents(enabled: boolean): boolean {
    const groups = this.dispatcher.groups!;
    if (groups.has('task') === enabled) return false;
    if (enabled) groups.add('task');
    else groups.delete('task');
    return true;
  }

  private async checkDuplicateHostname(): Promise<void> {
    const hostname = this.options.hostname;
    try {
      const replies = await this.control.ping({ destination: [hostname], timeoutMs: 1_000 });
      if (replies.some((reply) => hostname in reply)) {
        this.warn(
          new ConfigError(
            `another node already uses the name ${hostname}: give each worker a unique hostname, or remote control and monitoring will mix them up`,
          ),
        );
      }
    } catch (error) {
      this.warn(error as Error);
    }
  }
}
