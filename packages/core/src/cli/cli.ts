#!/usr/bin/env node
import 'reflect-metadata';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Conveyor } from '../app/conveyor';
import { ConfigError } from '../errors';

const USAGE = `Usage: conveyor worker --app <module> [--queues a,b] [--concurrency N]

  --app          module (path) that exports a Conveyor app as \`app\` or as its default export
  --queues       comma-separated queues to consume (default: the queues of the app's tasks)
  --concurrency  tasks run at once (default 10)
  --prefetch-multiplier  prefetch = concurrency x this (default 1)
  --shutdown-timeout     ms running tasks may take to finish on SIGTERM/SIGINT (default 30000)
  -E, --task-events      send Celery task events (celery events, Flower); worker events are always sent
  --without-heartbeat    send no worker-heartbeat events

The worker runs until SIGTERM or SIGINT, then stops gracefully (a second signal forces it).
Exit codes: 0 all tasks finished; 1 the shutdown timeout was hit and running tasks were requeued;
2 a second signal forced the stop; 64 bad usage or configuration.`;

/** Parsed command line of `conveyor worker`. */
export interface WorkerCommand {
  app: string;
  queues?: string[];
  concurrency?: number;
  prefetchMultiplier?: number;
  shutdownTimeoutMs?: number;
  taskEvents?: boolean;
  heartbeat?: boolean;
}

/** Flags that take no value. */
const SWITCHES: Record<string, 'taskEvents' | 'withoutHeartbeat'> = {
  '-E': 'taskEvents',
  '--task-events': 'taskEvents',
  '--without-heartbeat': 'withoutHeartbeat',
};

/** Parses `worker --app m [--queues a,b] [--concurrency N]`; throws ConfigError on bad input. */
export function parseWorkerCommand(argv: readonly string[]): WorkerCommand {
  const [command, ...rest] = argv;
  if (command !== 'worker') throw new ConfigError(`unknown command '${command ?? ''}'\n\n${USAGE}`);
  const values = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < rest.length; i += 1) {
    const arg = rest[i]!;
    if (SWITCHES[arg]) {
      switches.add(SWITCHES[arg]);
      continue;
    }
    const [flag, inline] = arg.split('=', 2) as [string, string | undefined];
    if (
      ![
        '--app',
        '--queues',
        '--concurrency',
        '--prefetch-multiplier',
        '--shutdown-timeout',
      ].includes(flag)
    ) {
      throw new ConfigError(`unknown option '${arg}'\n\n${USAGE}`);
    }
    const value = inline ?? rest[++i];
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    values.set(flag, value);
  }
  const app = values.get('--app');
  if (!app) throw new ConfigError(`--app is required\n\n${USAGE}`);
  const integer = (flag: string): number | undefined => {
    const text = values.get(flag);
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1)
      throw new ConfigError(`${flag} must be a positive integer, got '${text}'`);
    return n;
  };
  return {
    app,
    queues: values
      .get('--queues')
      ?.split(',')
      .map((q) => q.trim())
      .filter(Boolean),
    concurrency: integer('--concurrency'),
    prefetchMultiplier: integer('--prefetch-multiplier'),
    shutdownTimeoutMs: integer('--shutdown-timeout'),
    taskEvents: switches.has('taskEvents'),
    heartbeat: !switches.has('withoutHeartbeat'),
  };
}

/**
 * A real dynamic `import()`: TypeScript compiles `import()` to `require()` for CommonJS output,
 * which cannot load ES modules or file URLs.
 */
const importModule = new Function('specifier', 'return import(specifier)') as (
  specifier: string,
) => Promise<unknown>;

/** Loads the app a module exports (`app` or default). */
export async function loadApp(modulePath: string): Promise<Conveyor> {
  const url = pathToFileURL(resolve(process.cwd(), modulePath)).href;
  const loaded = (await importModule(url)) as Record<string, unknown>;
  const candidates = [
    loaded.app,
    loaded.default,
    (loaded.default as Record<string, unknown> | undefined)?.app,
  ];
  const app = candidates.find((c): c is Conveyor => c instanceof Conveyor);
  if (!app) {
    throw new ConfigError(
      `${modulePath} exports no Conveyor app (export it as \`app\` or as the default export)`,
    );
  }
  return app;
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    console.log(USAGE);
    return;
  }
  const command = parseWorkerCommand(argv);
  const app = await loadApp(command.app);
  const worker = app.worker({
    queues: command.queues,
    concurrency: command.concurrency,
    prefetchMultiplier: command.prefetchMultiplier,
    shutdownTimeoutMs: command.shutdownTimeoutMs,
    taskEvents: command.taskEvents,
    heartbeat: command.heartbeat,
    handleSignals: true,
    appModule: resolve(process.cwd(), command.app),
  });
  worker.on('worker-error', (error) => console.error(`[conveyor] ${error.message}`));
  worker.on('message-rejected', (e) =>
    console.error(`[conveyor] dead-lettered ${e.id ?? '(no id)'}: ${e.reason}`),
  );
  await worker.start();
  console.log(
    `[conveyor] worker ${worker.hostname} consuming ${worker.queues.join(', ')} (concurrency ${worker.concurrency})`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: Error) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(64);
  });
}
