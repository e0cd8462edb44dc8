import { Option, type Command } from 'commander';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_DELIVERIES,
  DEFAULT_PREFETCH_MULTIPLIER,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  EXIT_FORCED,
  EXIT_SHUTDOWN_TIMEOUT,
  EXIT_SOFTWARE,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
} from '../../defaults';
import { LOG_LEVEL_NAMES, parseLogLevel } from '../../logging/log-level';
import { bannerText, workerBanner } from '../../logging/worker-banner';
import { logWorker } from '../../logging/worker-log';
import { createWorkerLogger, type LogFormat } from '../../logging/worker-logger';
import { loadAppModule } from '../app-module';
import { serveWorkerMetrics } from '../metrics-port';
import type { CommandModule } from '../command-module';
import { commaList, numberArgument, port, positiveInteger } from '../option-parsers';
import { expandNodeName } from '../node-name';
import { coreVersion } from '../version';
import { WORKER_LIMITS } from '../../worker/consumption-rules';

/** The options of `conveyor worker`, as commander parses them. */
export interface WorkerCommandOptions {
  app: string;
  queues?: string[];
  concurrency?: number;
  prefetchMultiplier?: number;
  shutdownTimeout?: number;
  maxDeliveries?: number;
  hostname?: string;
  loglevel: string;
  logFormat: LogFormat;
  metricsPort?: number;
  taskEvents?: boolean;
  withoutHeartbeat?: boolean;
}

/** `conveyor worker`: runs a worker for the app a module exports until a signal stops it. */
export const workerCommand: CommandModule = (program: Command) => {
  program
    .command('worker')
    .description('Run a worker: consume the queues and run the tasks of an app')
    .requiredOption(
      '-A, --app <module>',
      'module (path) exporting the app as `app` or default; it may also export `instances`, `resolve` and `logger`',
    )
    .option(
      '-Q, --queues <names>',
      "comma-separated queues to consume (default: the queues of the app's tasks)",
      commaList,
    )
    .option(
      '-c, --concurrency <n>',
      `tasks run at once (default: ${DEFAULT_CONCURRENCY})`,
      numberArgument(WORKER_LIMITS.concurrency),
    )
    .option(
      '--prefetch-multiplier <n>',
      `prefetch = concurrency x this (default: ${DEFAULT_PREFETCH_MULTIPLIER})`,
      numberArgument(WORKER_LIMITS.prefetchMultiplier),
    )
    .option(
      '--shutdown-timeout <ms>',
      `ms running tasks may take to finish after SIGTERM/SIGINT (default: ${DEFAULT_SHUTDOWN_TIMEOUT_MS})`,
      positiveInteger,
    )
    .option(
      '--max-deliveries <n>',
      `deliveries that may end without completing before a task is dead-lettered with FAILURE (default: ${DEFAULT_MAX_DELIVERIES})`,
      numberArgument(WORKER_LIMITS.maxDeliveries),
    )
    .option(
      '-n, --hostname <name>',
      'node name; %h host, %n host without domain, %d domain, %i and %I process index (default: conveyor-<pid>@<host>)',
    )
    .option(
      '-E, --task-events',
      'send Celery task events (celery events, Flower); worker events are always sent',
    )
    .option('--without-heartbeat', 'send no worker-heartbeat events')
    .option(
      '-l, --loglevel <level>',
      `least severe level logged: ${LOG_LEVEL_NAMES.join(', ')}`,
      'info',
    )
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics at http://<host>:<port>/metrics (needs prom-client installed)',
      port,
    )
    .addOption(
      new Option('--log-format <format>', 'text lines, or JSON lines for log shippers')
        .choices(['text', 'json'])
        .default('text'),
    )
    .addHelpText(
      'after',
      `
The worker runs until SIGTERM or SIGINT, then stops gracefully: no new tasks, running tasks get
--shutdown-timeout to finish, the rest go back to the queue. A second signal forces the stop.

Exit codes: 0 stopped, all tasks finished; ${EXIT_SHUTDOWN_TIMEOUT} the shutdown timeout was hit and running tasks
were requeued; ${EXIT_FORCED} a second signal forced the stop; ${EXIT_USAGE} bad usage or configuration;
${EXIT_UNAVAILABLE} the broker or result backend was unreachable at startup; ${EXIT_SOFTWARE} unexpected error.`,
    )
    .action((options: WorkerCommandOptions) => runWorker(options));
};

/** Loads the app module, starts a worker with its log, and returns once it consumes. */
async function runWorker(options: WorkerCommandOptions): Promise<void> {
  const level = parseLogLevel(options.loglevel);
  const hostname = options.hostname === undefined ? undefined : expandNodeName(options.hostname);
  const module = await loadAppModule(options.app);
  const { app } = module;
  const logger = module.logger ?? createWorkerLogger({ level, format: options.logFormat });
  const worker = app.worker({
    queues: options.queues,
    concurrency: options.concurrency,
    prefetchMultiplier: options.prefetchMultiplier,
    shutdownTimeoutMs: options.shutdownTimeout,
    maxDeliveries: options.maxDeliveries,
    hostname,
    taskEvents: options.taskEvents ?? false,
    heartbeat: !options.withoutHeartbeat,
    instances: await module.loadInstances?.(),
    resolve: module.resolve,
    handleSignals: true,
    appModule: module.path,
  });
  logWorker(worker, logger);
  const banner = workerBanner(app, worker, coreVersion());
  if (module.logger || options.logFormat === 'json') {
    logger.info({ event: 'worker-banner', ...banner }, `conveyor worker ${banner.worker} starting`);
  } else {
    // Above the log, whatever its level, as Celery's worker prints its banner.
    process.stdout.write(`${bannerText(banner)}\n`);
  }
  try {
    await app.backend?.connect();
    await worker.start();
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  // Told to shut down while it started (the shutdown command): its stop ends the process.
  if (!worker.running) return;
  if (options.metricsPort !== undefined) {
    const server = await serveWorkerMetrics(worker, options.metricsPort);
    logger.info(
      { event: 'metrics-serving', port: server.port },
      `Prometheus metrics at :${server.port}/metrics`,
    );
  }
  logger.info({ event: 'worker-ready', worker: worker.hostname }, `${worker.hostname} ready.`);
  // Until a signal ends the process: the in-memory broker holds no socket that would keep it up.
  setInterval(() => undefined, 1 << 30);
}
