import { CHILD_CONFIG_ENV, type ChildConfig, type ChildMessage, type ParentMessage } from './ipc';

/** The config a child was forked with. */
export function childConfig<C extends ChildConfig>(kind: C['kind']): C {
  const raw = process.env[CHILD_CONFIG_ENV];
  if (!raw)
    throw new Error(`${CHILD_CONFIG_ENV} is not set: this script is forked by bench/dist/run.js`);
  const config = JSON.parse(raw) as ChildConfig;
  if (config.kind !== kind) throw new Error(`expected a ${kind} config, got ${config.kind}`);
  return config as C;
}

export function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Runs `handle` for every parent message; a failure is reported and ends the child. */
function onParentMessage(handle: (message: ParentMessage) => Promise<void> | void): void {
  process.on('message', (message: ParentMessage) => {
    Promise.resolve()
      .then(() => handle(message))
      .catch(fail);
  });
  // The bench died or let go of us: never outlive it.
  process.on('disconnect', () => process.exit(1));
}

/** What a child does on its parent's messages. */
export interface ChildHandlers {
  /** On `start`; sends `started` (and whatever else it reports) itself. */
  start(): Promise<void>;
  /** The count `stats` reports: messages acked, tasks sent, events received. */
  count(): number;
  /** Fields `stats` adds to the process's memory and CPU. */
  extraStats?(): Partial<Extract<ChildMessage, { type: 'stats' }>>;
  /** On `notify-at`: send `reached` once the count meets it. */
  notifyAt?(target: number): void;
  /** Closes what the child opened; it then reports `stopped` and exits. */
  stop(): Promise<void>;
}

/** Answers the parent's messages with `handlers` and reports `ready`. */
export function serveParent(handlers: ChildHandlers): void {
  onParentMessage(async (message) => {
    switch (message.type) {
      case 'start':
        await handlers.start();
        return;
      case 'stats':
        send({ ...stats(handlers.count()), ...handlers.extraStats?.() });
        return;
      case 'notify-at':
        handlers.notifyAt?.(message.acked);
        return;
      case 'stop':
        await handlers.stop();
        send({ type: 'stopped' });
        setImmediate(() => process.exit(0));
        return;
    }
  });
  send({ type: 'ready' });
}

/** Reports an error to the parent and exits. */
export function fail(error: unknown): void {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: 'error', message });
  setTimeout(() => process.exit(1), 50);
}

/** Sends `reached` once `count()` meets the target set by the parent. */
export class AckTarget {
  private target = Number.POSITIVE_INFINITY;

  constructor(private readonly count: () => number) {}

  set(target: number): void {
    this.target = target;
    this.check();
  }

  check(): void {
    const acked = this.count();
    if (acked >= this.target) {
      this.target = Number.POSITIVE_INFINITY;
      send({ type: 'reached', acked });
    }
  }
}

function stats(acked: number): Extract<ChildMessage, { type: 'stats' }> {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    type: 'stats',
    acked,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}
