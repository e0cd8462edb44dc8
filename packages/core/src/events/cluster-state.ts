import type { CeleryEvent } from './celery-event';

/** Celery's heartbeat expiry window: a worker is offline after `freq × 200%` without a beat. */
export const HEARTBEAT_EXPIRE_WINDOW = 2;
/** Heartbeat frequency (seconds) assumed for a worker known only from task events, as Celery. */
const DEFAULT_FREQ_SECONDS = 60;
/** Receipt times kept per worker, as Celery's `Worker.heartbeat_max`. */
const HEARTBEATS_KEPT = 4;

/** The states a task goes through, as Celery's `State` derives them from events. */
export type TaskEventState =
  'PENDING' | 'RECEIVED' | 'STARTED' | 'SUCCESS' | 'FAILURE' | 'RETRY' | 'REVOKED' | 'REJECTED';

const STATE_OF_EVENT: Record<string, TaskEventState> = {
  sent: 'PENDING',
  received: 'RECEIVED',
  started: 'STARTED',
  succeeded: 'SUCCESS',
  failed: 'FAILURE',
  retried: 'RETRY',
  revoked: 'REVOKED',
  rejected: 'REJECTED',
};

/** Celery's `states.PRECEDENCE`: earlier means later in a task's life (a final state wins). */
const PRECEDENCE: readonly (string | null)[] = [
  'SUCCESS',
  'FAILURE',
  null,
  'REVOKED',
  'STARTED',
  'RECEIVED',
  'REJECTED',
  'RETRY',
  'PENDING',
];

function precedence(state: string): number {
  const index = PRECEDENCE.indexOf(state);
  return index < 0 ? PRECEDENCE.indexOf(null) : index;
}

/** Fields that only the `task-received` event may set (Celery's merge rule for RECEIVED). */
const RECEIVED_FIELDS = new Set([
  'name',
  'args',
  'kwargs',
  'parent_id',
  'root_id',
  'retries',
  'eta',
  'expires',
]);

/** What the cluster state knows about one worker. */
export interface ClusterWorker {
  hostname: string;
  pid?: number;
  /** Seconds between its heartbeats. */
  freq: number;
  /** When the last few heartbeats (or task events) arrived here, Unix seconds, oldest first. */
  heartbeats: number[];
  clock: number;
  /** Tasks running at its last heartbeat. */
  active?: number;
  /** Tasks it had finished at its last heartbeat. */
  processed?: number;
  loadavg?: number[];
  sw_ident?: string;
  sw_ver?: string;
  sw_sys?: string;
  /** Set when it said goodbye (worker-offline). */
  offline: boolean;
}

/** What the cluster state knows about one task. */
export interface ClusterTask {
  uuid: string;
  name?: string;
  state: TaskEventState | (string & {});
  /** Hostname of the worker that handles it. */
  worker?: string;
  /** Hostname of the producer that sent it (task-sent). */
  client?: string;
  args?: string;
  kwargs?: string;
  retries?: number;
  eta?: string | null;
  expires?: string | null;
  /** `repr` of the result (SUCCESS). */
  result?: string;
  /** `repr` of the exception (FAILURE, RETRY). */
  exception?: string;
  traceback?: string;
  /** Seconds it ran. */
  runtime?: number;
  root_id?: string | null;
  parent_id?: string | null;
  exchange?: string;
  routing_key?: string;
  /** Timestamp of the event that set the current state. */
  timestamp?: number;
  clock: number;
  /** When each event happened (Unix seconds, sender's clock adjusted to ours). */
  sent?: number;
  received?: number;
  started?: number;
  succeeded?: number;
  failed?: number;
  retried?: number;
  revoked?: number;
  rejected?: number;
}

/** Options of a {@link ClusterState}. */
export interface ClusterStateOptions {
  /** Workers remembered; the least recently heard from go first. @defaultValue 5000 */
  maxWorkers?: number;
  /** Tasks remembered; the least recently updated go first. @defaultValue 10000 */
  maxTasks?: number;
  /** The clock, in Unix seconds. @defaultValue `Date.now() / 1000` */
  now?: () => number;
}

/**
 * The cluster as events describe it, as Celery's `celery.events.state.State` builds it: workers
 * alive or offline (offline once a heartbeat is overdue by the expiry window, or at once on
 * `worker-offline`), and tasks with the state their events imply, merged in Celery's order so a
 * late `task-received` does not undo a `task-succeeded`. Memory is bounded: past `maxTasks` and
 * `maxWorkers` the least recently updated entries are forgotten. Feed it with
 * {@link ClusterState.event} (an {@link EventReceiver} does).
 */
export class ClusterState {
  private readonly workerMap = new Map<string, ClusterWorker>();
  private readonly taskMap = new Map<string, ClusterTask>();
  private readonly maxWorkers: number;
  private readonly maxTasks: number;
  private readonly now: () => number;
  /** Events applied so far. */
  eventCount = 0;

  constructor(options: ClusterStateOptions = {}) {
    this.maxWorkers = options.maxWorkers ?? 5_000;
    this.maxTasks = options.maxTasks ?? 10_000;
    this.now = options.now ?? (() => Date.now() / 1000);
  }

  /** Workers seen, by hostname (offline ones included, with `offline` set or heartbeats overdue). */
  get workers(): ReadonlyMap<string, ClusterWorker> {
    return this.workerMap;
  }

  /** Tasks seen, by id. */
  get tasks(): ReadonlyMap<string, ClusterTask> {
    return this.taskMap;
  }

  /** When the worker's last heartbeat expires (Unix seconds); undefined with no heartbeat. */
  heartbeatExpires(worker: ClusterWorker): number | undefined {
    const last = worker.heartbeats[worker.heartbeats.length - 1];
    return last === undefined ? undefined : last + worker.freq * HEARTBEAT_EXPIRE_WINDOW;
  }

  /** Whether the worker is alive: it has a heartbeat that has not expired. */
  isAlive(hostname: string): boolean {
    const worker = this.workerMap.get(hostname);
    if (!worker) return false;
    const expires = this.heartbeatExpires(worker);
    return expires !== undefined && this.now() < expires;
  }

  /** The workers alive now. */
  aliveWorkers(): ClusterWorker[] {
    return [...this.workerMap.values()].filter((w) => this.isAlive(w.hostname));
  }

  /** The tasks in `state` now. */
  tasksInState(state: TaskEventState): ClusterTask[] {
    return [...this.taskMap.values()].filter((t) => t.state === state);
  }

  /** Forgets everything. */
  clear(): void {
    this.workerMap.clear();
    this.taskMap.clear();
  }

  /** Applies one event (as an {@link EventReceiver} hands it over, with `local_received`). */
  event(event: CeleryEvent): void {
    this.eventCount += 1;
    const dash = event.type.indexOf('-');
    const group = dash < 0 ? event.type : event.type.slice(0, dash);
    const subject = dash < 0 ? '' : event.type.slice(dash + 1);
    if (group === 'worker') this.workerEvent(subject, event);
    else if (group === 'task' && typeof event.uuid === 'string') this.taskEvent(subject, event);
  }

  private workerEvent(subject: string, event: CeleryEvent): void {
    const worker = this.worker(event.hostname);
    for (const key of ['pid', 'freq', 'clock', 'active', 'processed', 'loadavg'] as const) {
      if (event[key] !== undefined)
        (worker as unknown as Record<string, unknown>)[key] = event[key];
    }
    for (const key of ['sw_ident', 'sw_ver', 'sw_sys'] as const) {
      if (typeof event[key] === 'string') worker[key] = event[key];
    }
    if (subject === 'offline') {
      worker.heartbeats.length = 0;
      worker.offline = true;
      return;
    }
    worker.offline = false;
    this.beat(worker, event);
  }

  private taskEvent(subject: string, event: CeleryEvent): void {
    const uuid = event.uuid as string;
    let task = this.taskMap.get(uuid);
    if (task) this.taskMap.delete(uuid);
    else task = { uuid, state: 'PENDING', clock: 0 };
    this.taskMap.set(uuid, task);
    while (this.taskMap.size > this.maxTasks)
      this.taskMap.delete(this.taskMap.keys().next().value!);

    if (subject === 'sent') {
      task.client = event.hostname;
    } else {
      task.worker = event.hostname;
      const worker = this.worker(event.hostname);
      if (!worker.offline) this.beat(worker, event);
    }
    const state = STATE_OF_EVENT[subject] ?? subject.toUpperCase();
    if (STATE_OF_EVENT[subject]) {
      (task as unknown as Record<string, unknown>)[subject] = event.timestamp;
    }
    const fields: Record<string, unknown> = { ...event };
    for (const key of ['type', 'hostname', 'pid', 'utcoffset', 'local_received', 'uuid']) {
      delete fields[key];
    }
    if (state !== 'RETRY' && task.state !== 'RETRY' && precedence(state) > precedence(task.state)) {
      // This event happened before the state we know: the state stays, and a task-received
      // gives only what it alone can tell.
      if (state === 'RECEIVED') {
        for (const key of Object.keys(fields)) if (!RECEIVED_FIELDS.has(key)) delete fields[key];
      }
    } else {
      fields.state = state;
      fields.timestamp = event.timestamp;
    }
    Object.assign(task, fields);
  }

  private worker(hostname: string): ClusterWorker {
    let worker = this.workerMap.get(hostname);
    if (worker) this.workerMap.delete(hostname);
    else
      worker = { hostname, freq: DEFAULT_FREQ_SECONDS, heartbeats: [], clock: 0, offline: false };
    this.workerMap.set(hostname, worker);
    while (this.workerMap.size > this.maxWorkers) {
      this.workerMap.delete(this.workerMap.keys().next().value!);
    }
    return worker;
  }

  /** Records a sign of life, at the time it arrived here (as Celery does). */
  private beat(worker: ClusterWorker, event: CeleryEvent): void {
    const at = typeof event.local_received === 'number' ? event.local_received : this.now();
    const beats = worker.heartbeats;
    if (beats.length >= HEARTBEATS_KEPT) beats.shift();
    beats.push(at);
    beats.sort((a, b) => a - b);
  }
}
