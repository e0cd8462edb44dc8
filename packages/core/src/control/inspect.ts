import { isAddressedTo } from '../protocol/control-message';
import type { ControlOptions, NodeReplies } from './control-options';

/** Who to inspect and how long to wait: see {@link ControlOptions}. */
export type InspectOptions = ControlOptions;

/** What Celery's `request.info()` gives for a task a worker holds. */
export interface TaskRequestInfo {
  id: string;
  name: string;
  /** Positional arguments (Celery sends the values; `safe` gives their repr). */
  args: unknown;
  kwargs: unknown;
  type: string;
  hostname: string;
  /** Unix seconds it started, or null before it started. */
  time_start: number | null;
  acknowledged: boolean;
  delivery_info: {
    exchange: string;
    routing_key: string;
    priority: number | null;
    redelivered: boolean;
  };
  worker_pid: number | null;
  [field: string]: unknown;
}

/** What `scheduled` lists per task: Celery's eta tasks waiting in the worker. */
export interface ScheduledTaskInfo {
  eta: string | null;
  priority: number | null;
  request: TaskRequestInfo;
}

/** The control client that sends the requests (see `Control`). */
interface Broadcaster {
  broadcast<T>(
    command: string,
    options: ControlOptions & { arguments?: Record<string, unknown>; reply?: boolean },
  ): Promise<NodeReplies<T>>;
}

/**
 * Inspection of workers, as Celery's `app.control.inspect()`: each method resolves with the
 * replies by hostname of the workers that answered within the timeout (an empty object if none
 * did). Conveyor and Python workers answer alike.
 */
export class Inspect {
  constructor(
    private readonly control: Broadcaster,
    private readonly options: InspectOptions,
  ) {}

  ping(): Promise<Record<string, { ok: string }>> {
    return this.request('ping');
  }

  /** Worker statistics (`pid`, `pool`, `total`, `prefetch_count`, `rusage`...). */
  stats(): Promise<Record<string, Record<string, unknown>>> {
    return this.request('stats');
  }

  /** Tasks running now. */
  active(): Promise<Record<string, TaskRequestInfo[]>> {
    return this.request('active');
  }

  /** Tasks received and waiting for a slot. */
  reserved(): Promise<Record<string, TaskRequestInfo[]>> {
    return this.request('reserved');
  }

  /** Tasks held until their eta (or rate-limit slot). */
  scheduled(): Promise<Record<string, ScheduledTaskInfo[]>> {
    return this.request('scheduled');
  }

  /** Task names each worker runs (`name [rate_limit=10/s]`). */
  registered(): Promise<Record<string, string[]>> {
    return this.request('registered');
  }

  /** Revoked task ids each worker remembers. */
  revoked(): Promise<Record<string, string[]>> {
    return this.request('revoked');
  }

  /** The queues each worker consumes, in kombu's `Queue.as_dict` form. */
  activeQueues(): Promise<Record<string, Array<Record<string, unknown>>>> {
    return this.request('active_queues');
  }

  /** Where each worker has these tasks: `{id: [active|reserved|ready, info]}`. */
  queryTask(...ids: string[]): Promise<Record<string, Record<string, [string, TaskRequestInfo]>>> {
    return this.request('query_task', { ids });
  }

  /** Each worker's Lamport clock. */
  clock(): Promise<Record<string, { clock: number }>> {
    return this.request('clock');
  }

  /** A text report about each worker's software, for bug reports. */
  report(): Promise<Record<string, { ok: string }>> {
    return this.request('report');
  }

  /** Each worker's configuration. */
  conf(withDefaults = false): Promise<Record<string, Record<string, unknown>>> {
    return this.request('conf', { with_defaults: withDefaults });
  }

  private async request<T>(
    command: string,
    args: Record<string, unknown> = {},
  ): Promise<Record<string, T>> {
    const replies = await this.control.broadcast<T>(command, {
      ...this.options,
      arguments: args,
      reply: true,
    });
    const byNode: Record<string, T> = {};
    for (const reply of replies) Object.assign(byNode, reply);
    // As Celery's Inspect: a pattern also filters the replies (a worker may answer anything).
    if (this.options.pattern) {
      for (const node of Object.keys(byNode)) {
        if (!isAddressedTo({ pattern: this.options.pattern, matcher: this.options.matcher }, node))
          delete byNode[node];
      }
    }
    return byNode;
  }
}
