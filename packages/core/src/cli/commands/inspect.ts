import { Argument, type Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import type { Inspect, ScheduledTaskInfo, TaskRequestInfo } from '../../control/inspect';
import { processIo, type CommandIo } from '../command-io';
import { commaList, seconds } from '../option-parsers';
import { appCommand, printJson, withApp, type AppCommandOptions } from './app-command';
import { EXIT_NO_REPLY, renderNodeReplies, REPLY_TIMEOUT_HELP } from './node-replies';
import { CommandExit } from '../command-exit';

interface InspectCommandOptions extends AppCommandOptions {
  destination?: string[];
  timeout?: number;
}

/** Each inspection: how to ask, and how to show one worker's reply. */
const INSPECTIONS: Record<
  string,
  {
    ask: (inspect: Inspect, args: string[]) => Promise<Record<string, unknown>>;
    show: (reply: unknown) => string[];
  }
> = {
  ping: { ask: (i) => i.ping(), show: (r) => [String((r as { ok?: unknown }).ok ?? 'pong')] },
  active: { ask: (i) => i.active(), show: (r) => tasks(r as TaskRequestInfo[]) },
  reserved: { ask: (i) => i.reserved(), show: (r) => tasks(r as TaskRequestInfo[]) },
  scheduled: {
    ask: (i) => i.scheduled(),
    show: (r) =>
      list((r as ScheduledTaskInfo[]).map((s) => `${s.eta ?? '-'} ${describeTask(s.request)}`)),
  },
  registered: { ask: (i) => i.registered(), show: (r) => list(r as string[]) },
  revoked: { ask: (i) => i.revoked(), show: (r) => list(r as string[]) },
  stats: { ask: (i) => i.stats(), show: (r) => JSON.stringify(r, null, 2).split('\n') },
  active_queues: {
    ask: (i) => i.activeQueues(),
    show: (r) =>
      list(
        (r as Array<Record<string, unknown>>).map(
          (q) =>
            `${String(q.name)} exchange=${JSON.stringify((q.exchange as { name?: unknown } | undefined)?.name ?? q.exchange)} routing_key=${String(q.routing_key)}`,
        ),
      ),
  },
  query_task: {
    ask: (i, ids) => i.queryTask(...ids),
    show: (r) =>
      list(
        Object.entries(r as Record<string, [string, TaskRequestInfo]>).map(
          ([id, [state, info]]) => `${id}: ${state} ${info.name}`,
        ),
      ),
  },
};

/**
 * `conveyor inspect <method>`: asks workers (Conveyor's and Python Celery's alike) through the
 * app's control client and shows each one's reply.
 */
export function inspectCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(
      program,
      'inspect',
      'Ask workers what they are doing (Conveyor and Celery workers alike)',
    )
      .addArgument(new Argument('<method>', 'what to ask').choices(Object.keys(INSPECTIONS)))
      .argument('[args...]', 'task ids, for query_task')
      .option(
        '-d, --destination <nodes>',
        'comma-separated worker names to ask (default: all)',
        commaList,
      )
      .option('-t, --timeout <seconds>', REPLY_TIMEOUT_HELP, seconds)
      .addHelpText(
        'after',
        `
Prints each worker's reply under its name, then how many replied. Exit codes: 0 replies shown;
${EXIT_NO_REPLY} no worker replied within the timeout; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} broker unreachable.`,
      )
      .action((method: string, args: string[], options: InspectCommandOptions) =>
        withApp(options, io, async ({ app, print, paint }) => {
          const inspection = INSPECTIONS[method]!;
          const inspect = app.control.inspect({
            destination: options.destination,
            timeoutMs: options.timeout,
          });
          const replies = await inspection.ask(inspect, args);
          if (options.json) {
            printJson(io, replies);
            if (Object.keys(replies).length === 0) {
              throw new CommandExit(EXIT_NO_REPLY, 'no nodes replied within the timeout');
            }
          } else {
            print(renderNodeReplies(replies, inspection.show, paint));
          }
        }),
      );
  };
}

function tasks(requests: TaskRequestInfo[]): string[] {
  return list(requests.map(describeTask));
}

function describeTask(request: TaskRequestInfo): string {
  return `${request.name}[${request.id}] args=${JSON.stringify(request.args)} kwargs=${JSON.stringify(request.kwargs)}`;
}

function list(items: string[]): string[] {
  return items.length === 0 ? ['- empty -'] : items.map((item) => `* ${item}`);
}
