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
export function onParentMessage(handle: (message: ParentMessage) => Promise<void> | void): void {
  process.on('message', (message: ParentMessage) => {
    Promise.resolve()
      .then(() => handle(message))
      .catch(fail);
  });
  // The bench died or let go of us: never outlive it.
  process.on('disconnect', () => process.exit(1));
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

export function stats(acked: number): Extract<ChildMessage, { type: 'stats' }> {
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
