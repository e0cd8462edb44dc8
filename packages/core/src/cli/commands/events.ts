import type { Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import type { CeleryEvent } from '../../events/celery-event';
import type { ClusterState } from '../../events/cluster-state';
import { processIo, type CommandIo } from '../command-io';
import type { Painter } from '../output/paint';
import { seconds } from '../option-parsers';
import { appCommand, withApp, type AppCommandOptions } from './app-command';

interface EventsOptions extends AppCommandOptions {
  dump?: boolean;
  duration?: number;
}

/**
 * `conveyor events`: Celery events as they happen (from Conveyor and Python workers and
 * producers), one line each, through the app's event receiver and cluster state; `--dump` (or
 * `--json`: a stream has no single document to print) prints each event raw, one JSON object per
 * line.
 */
export function eventsCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(program, 'events', 'Show Celery events live, one line each (--dump: raw JSON lines)')
      .option('--dump', 'print each event as received, one JSON object per line (--json too)')
      .option(
        '--duration <seconds>',
        'stop after this long (default: at Ctrl-C or SIGTERM)',
        seconds,
      )
      .addHelpText(
        'after',
        `
Task events come only from workers that send them (conveyor worker --task-events, celery worker
-E, or conveyor control enable_events); worker events (online, heartbeat, offline) always.
On stop it prints how many events it saw and the workers it knows, alive or not.
Exit codes: 0 stopped; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} broker unreachable.`,
      )
      .action((options: EventsOptions) =>
        withApp(options, io, async ({ app, print, paint }) => {
          const raw = options.dump === true || options.json === true;
          const monitor = await app.events.monitor();
          const state = monitor.state;
          monitor.receiver.on('*', (event) =>
            print(raw ? JSON.stringify(event) : describeEvent(event, state, paint)),
          );
          io.stderr.write('listening for events on celeryev (Ctrl-C to stop)\n');
          await untilStopped(io, options.duration);
          await monitor.stop();
          if (!raw) print(summary(state, paint));
        }),
      );
  };
}

/** One human line: time, node, type, then what the event says. */
export function describeEvent(event: CeleryEvent, state: ClusterState, paint: Painter): string {
  const at = new Date(event.timestamp * 1000).toISOString();
  const head = `${paint(at, 'dim')} ${event.hostname} ${paint(event.type, styleOf(event.type))}`;
  if (event.type.startsWith('task-')) {
    const uuid = String(event.uuid ?? '');
    const name = (event.name as string | undefined) ?? state.tasks.get(uuid)?.name ?? '?';
    return `${head} ${name}[${uuid}]${details(event)}`;
  }
  const load =
    event.type === 'worker-offline'
      ? ''
      : ` active=${String(event.active ?? 0)} processed=${String(event.processed ?? 0)}`;
  return `${head}${load}`;
}

function details(event: CeleryEvent): string {
  const parts: string[] = [];
  if (event.type === 'task-received' || event.type === 'task-sent') {
    parts.push(`args=${String(event.args)}`, `kwargs=${String(event.kwargs)}`);
  }
  if (typeof event.runtime === 'number') parts.push(`runtime=${event.runtime.toFixed(3)}s`);
  if (event.result !== undefined) parts.push(`result=${String(event.result)}`);
  if (event.exception !== undefined) parts.push(`exception=${String(event.exception)}`);
  if (event.type === 'task-revoked') {
    parts.push(
      `terminated=${String(event.terminated ?? false)}`,
      `expired=${String(event.expired ?? false)}`,
    );
  }
  return parts.length === 0 ? '' : ` ${parts.join(' ')}`;
}

function styleOf(type: string) {
  if (type === 'task-succeeded' || type === 'worker-online') return 'green' as const;
  if (type === 'task-failed' || type === 'worker-offline' || type === 'task-rejected')
    return 'red' as const;
  if (type === 'task-retried' || type === 'task-revoked') return 'yellow' as const;
  return undefined;
}

function summary(state: ClusterState, paint: Painter): string {
  const lines = [`\n${state.eventCount} events.`];
  for (const worker of state.workers.values()) {
    const alive = state.isAlive(worker.hostname);
    lines.push(`${worker.hostname}: ${alive ? paint('online', 'green') : paint('offline', 'red')}`);
  }
  return lines.join('\n');
}

/** Resolves at SIGINT or SIGTERM (or the test's abort signal), or after `durationMs`. */
function untilStopped(io: CommandIo, durationMs: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    const timer = durationMs === undefined ? undefined : setTimeout(stop, durationMs);
    if (io.signal) io.signal.addEventListener('abort', stop, { once: true });
    else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
}
