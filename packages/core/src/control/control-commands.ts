import { ConfigError } from '../errors';
import { revokeOf, type ControlRequest, type RevokeCommand } from '../protocol/control-message';
import type { LamportClock } from '../protocol/lamport-clock';
import type { ControlAnswer } from './control-options';
import type { ScheduledTaskInfo, TaskRequestInfo } from './inspect';

/** A registered task as `inspect registered` lists it. */
export interface RegisteredTask {
  name: string;
  queue: string;
  /** The rate limit in force now (`'10/s'`), if any. */
  rateLimit?: string;
}

/**
 * What remote-control commands need from a worker: a narrow view, so the commands are plain
 * functions that the Conveyor worker (or a test double) answers.
 */
export interface ControlledWorker {
  readonly hostname: string;
  /** The worker's Lamport clock (events and replies carry it). */
  readonly clock: LamportClock;
  /** `inspect stats`: pid, pool, totals, prefetch, rusage... */
  stats(): Record<string, unknown>;
  /** Tasks running now. */
  activeRequests(): TaskRequestInfo[];
  /** Tasks received and waiting for a slot. */
  reservedRequests(): TaskRequestInfo[];
  /** Tasks held until their rate-limit slot. */
  scheduledRequests(): ScheduledTaskInfo[];
  registeredTasks(): RegisteredTask[];
  /** Revoked ids remembered, with when each was revoked (Unix seconds). */
  revokedIds(): Map<string, number>;
  /** The queues consumed now. */
  activeQueues(): string[];
  /** Remembers ids as revoked; with `terminate`, stops those running. Returns the ids stopped. */
  revoke(command: RevokeCommand): string[];
  /**
   * Sets a task's rate limit (`'10/s'`; null removes it). False for a task it does not know;
   * throws `ConfigError` for a rate it cannot read.
   */
  setRateLimit(taskName: string, rateLimit: string | null): boolean;
  /** Sets a task's time limits in ms (null removes one). False for a task it does not know. */
  setTimeLimits(taskName: string, softMs: number | null, hardMs: number | null): boolean;
  addConsumer(queue: string): Promise<void>;
  cancelConsumer(queue: string): Promise<void>;
  /** Changes the concurrency by `delta` (at least 1 remains); returns the new concurrency. */
  resizePool(delta: number): number;
  /** Sets autoscale bounds; returns them as applied. */
  autoscale(max: number, min: number): [number, number];
  /** Turns task events on or off; returns whether that changed anything. */
  setTaskEvents(enabled: boolean): boolean;
  /** Sends a `worker-heartbeat` event now. */
  sendHeartbeat(): void;
  /** Starts a graceful shutdown. */
  shutdown(): void;
  /** The worker's configuration, JSON-safe. */
  conf(): Record<string, unknown>;
  /** A text report of the software and platform. */
  report(): string;
}

const ok = (value: string): ControlAnswer => ({ ok: value });
const nok = (value: string): ControlAnswer => ({ error: value });

type Handler = (worker: ControlledWorker, args: Record<string, unknown>) => unknown;

/**
 * The control commands a Conveyor worker answers, by Celery's names, with Celery's replies.
 * Inspection commands return data; control commands return `{ok}` or `{error}`.
 */
const COMMANDS: Record<string, Handler> = {
  ping: () => ok('pong'),
  stats: (w) => w.stats(),
  active: (w) => w.activeRequests(),
  reserved: (w) => w.reservedRequests(),
  scheduled: (w) => w.scheduledRequests(),
  registered: (w, args) => registered(w, args),
  revoked: (w) => [...w.revokedIds().keys()],
  active_queues: (w) => w.activeQueues().map(queueAsDict),
  query_task: (w, args) => queryTask(w, args),
  clock: (w) => ({ clock: w.clock.value }),
  report: (w) => ok(w.report()),
  conf: (w) => w.conf(),
  hello: (w, args) => hello(w, args),
  heartbeat: (w) => {
    w.sendHeartbeat();
    return undefined;
  },
  revoke: (w, args) => revoke(w, { method: 'revoke', arguments: args }),
  terminate: (w, args) => revoke(w, { method: 'terminate', arguments: args }),
  rate_limit: (w, args) => rateLimit(w, args),
  time_limit: (w, args) => timeLimit(w, args),
  enable_events: (w) =>
    ok(w.setTaskEvents(true) ? 'task events enabled' : 'task events already enabled'),
  disable_events: (w) =>
    ok(w.setTaskEvents(false) ? 'task events disabled' : 'task events already disabled'),
  pool_grow: (w, args) => {
    w.resizePool(positiveCount(args.n));
    return ok('pool will grow');
  },
  pool_shrink: (w, args) => {
    w.resizePool(-positiveCount(args.n));
    return ok('pool will shrink');
  },
  autoscale: (w, args) => {
    const [max, min] = w.autoscale(positiveCount(args.max), Math.max(0, Number(args.min ?? 0)));
    return ok(`autoscale now max=${max} min=${min}`);
  },
  add_consumer: (w, args) => {
    const queue = requireString(args.queue, 'queue');
    void w.addConsumer(queue);
    return ok(`add consumer ${queue}`);
  },
  cancel_consumer: (w, args) => {
    const queue = requireString(args.queue, 'queue');
    void w.cancelConsumer(queue);
    return ok(`no longer consuming from ${queue}`);
  },
  shutdown: (w) => {
    w.shutdown();
    return ok('shutting down');
  },
};

/** The commands a Conveyor worker answers. */
export const CONTROL_COMMANDS: readonly string[] = Object.keys(COMMANDS);

/**
 * Runs a control command on `worker` and returns its reply (undefined for commands that answer
 * nothing). A command it does not know, or one that fails, gives `{error}`, as kombu's pidbox
 * replies, so a caller waiting for replies hears why.
 */
export function runControlCommand(worker: ControlledWorker, request: ControlRequest): unknown {
  const handler = Object.hasOwn(COMMANDS, request.method) ? COMMANDS[request.method] : undefined;
  if (!handler) return nok(`no such command: ${request.method}`);
  try {
    return handler(worker, request.arguments);
  } catch (error) {
    return nok(error instanceof Error ? error.message : String(error));
  }
}

function revoke(worker: ControlledWorker, request: ControlRequest): ControlAnswer {
  const command = revokeOf(request);
  if (!command) return nok('no task_id');
  const terminated = worker.revoke(command);
  if (command.terminate) {
    return ok(
      terminated.length > 0 ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown',
    );
  }
  return ok(`tasks ${command.taskIds.join(', ')} flagged as revoked`);
}

/** Celery's `rate()` forms: `'10/s'`, `'10/m'`, `'10/h'`, or a bare number per second. */
function rateLimit(worker: ControlledWorker, args: Record<string, unknown>): ControlAnswer {
  const taskName = requireString(args.task_name, 'task_name');
  const raw = args.rate_limit;
  let rate: string | null;
  if (raw === null || raw === undefined || raw === 0 || raw === '0' || raw === '') rate = null;
  else if (typeof raw === 'number' || /^\s*\d+(\.\d+)?\s*$/.test(String(raw)))
    rate = `${Number(raw)}/s`;
  else rate = String(raw);
  try {
    if (!worker.setRateLimit(taskName, rate)) return nok('unknown task');
  } catch (error) {
    if (error instanceof ConfigError) return nok(`Invalid rate limit string: ${String(raw)}`);
    throw error;
  }
  return ok(rate === null ? 'rate limit disabled successfully' : 'new rate limit set successfully');
}

function timeLimit(worker: ControlledWorker, args: Record<string, unknown>): ControlAnswer {
  const taskName = requireString(args.task_name, 'task_name');
  const toMs = (seconds: unknown): number | null =>
    typeof seconds === 'number' && seconds > 0 ? seconds * 1000 : null;
  if (!worker.setTimeLimits(taskName, toMs(args.soft), toMs(args.hard))) return nok('unknown task');
  return ok('time limits set successfully');
}

function registered(worker: ControlledWorker, args: Record<string, unknown>): string[] {
  const items = Array.isArray(args.taskinfoitems) ? args.taskinfoitems : ['rate_limit'];
  return worker
    .registeredTasks()
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((task) => {
      const info: string[] = [];
      if (items.includes('exchange')) info.push(`exchange=${task.queue}`);
      if (items.includes('routing_key')) info.push(`routing_key=${task.queue}`);
      if (items.includes('rate_limit') && task.rateLimit) info.push(`rate_limit=${task.rateLimit}`);
      return info.length > 0 ? `${task.name} [${info.join(' ')}]` : task.name;
    });
}

function queryTask(
  worker: ControlledWorker,
  args: Record<string, unknown>,
): Record<string, [string, TaskRequestInfo]> {
  const raw = args.ids;
  const ids = new Set((Array.isArray(raw) ? raw : [raw]).filter((id) => typeof id === 'string'));
  const found: Record<string, [string, TaskRequestInfo]> = {};
  for (const info of worker.activeRequests())
    if (ids.has(info.id)) found[info.id] = ['active', info];
  for (const info of worker.reservedRequests()) {
    if (ids.has(info.id) && !found[info.id]) found[info.id] = ['reserved', info];
  }
  return found;
}

/**
 * Celery's `hello` (mingle, at a Python worker's start): its revoked ids are taken, and ours
 * and our clock are returned.
 */
function hello(worker: ControlledWorker, args: Record<string, unknown>): unknown {
  if (args.from_node === worker.hostname) return undefined;
  const theirs = args.revoked;
  if (typeof theirs === 'object' && theirs !== null && !Array.isArray(theirs)) {
    const ids = Object.keys(theirs);
    if (ids.length > 0) worker.revoke({ taskIds: ids, terminate: false, signal: 'SIGTERM' });
  }
  const revoked: Record<string, number> = {};
  // Python's LimitedSet wants float timestamps: an integral one would arrive as an int.
  for (const [id, at] of worker.revokedIds()) revoked[id] = Number.isInteger(at) ? at + 0.001 : at;
  return { revoked, clock: worker.clock.forward() };
}

/** A queue as kombu's `Queue.as_dict(recurse=True)` describes it (Conveyor's topology). */
function queueAsDict(name: string): Record<string, unknown> {
  return {
    name,
    exchange: {
      name,
      type: 'direct',
      arguments: null,
      durable: true,
      passive: false,
      auto_delete: false,
      delivery_mode: null,
      no_declare: false,
    },
    routing_key: name,
    queue_arguments: null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: null,
  };
}

function positiveCount(value: unknown): number {
  const n = value === undefined || value === null ? 1 : Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError(`expected a positive integer, got ${String(value)}`);
  return n;
}

function requireString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${name} is required`);
  return value;
}
