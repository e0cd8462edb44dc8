import type { Conveyor } from '../app/conveyor';
import type { Worker } from '../worker/worker';

/** What a worker announces when it starts: who it is and what it talks to and runs. */
export interface WorkerBanner {
  /** The worker's node name. */
  worker: string;
  /** The version of `@conveyor/core`. */
  version: string;
  /** Where the broker is, password masked. */
  transport: string;
  /** Where results go, password masked; `disabled` without a backend. */
  backend: string;
  concurrency: number;
  queues: string[];
  /** The app's task names with their queues. */
  tasks: Array<{ name: string; queue: string }>;
}

/** Collects the banner of `worker`, which runs tasks of `app`. */
export function workerBanner(app: Conveyor, worker: Worker, version: string): WorkerBanner {
  const where = (part: object & { describe?(): string }): string =>
    part.describe?.() ?? part.constructor.name;
  return {
    worker: worker.hostname,
    version,
    transport: where(app.transport),
    backend: app.backend ? where(app.backend) : 'disabled',
    concurrency: worker.concurrency,
    queues: [...worker.queues],
    tasks: app.tasks.map((t) => ({ name: t.name, queue: t.queue })),
  };
}

/** The banner as the lines printed above the log, as Celery's worker prints its own. */
export function bannerText(banner: WorkerBanner): string {
  const tasks = banner.tasks.map((t) => `  . ${t.name}  (${t.queue})`);
  return [
    `conveyor ${banner.version}: worker ${banner.worker}`,
    '',
    `  transport:   ${banner.transport}`,
    `  results:     ${banner.backend}`,
    `  concurrency: ${banner.concurrency}`,
    `  queues:      ${banner.queues.join(', ')}`,
    '',
    '[tasks]',
    ...(tasks.length > 0 ? tasks : ['  (none)']),
    '',
  ].join('\n');
}
