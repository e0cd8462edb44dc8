import { Argument, InvalidArgumentError, type Command } from 'commander';
import type { Control } from '../../control/control-client';
import { DEFAULT_POOL_RESIZE_STEP, EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import type { ControlAnswer, ControlOptions, NodeReplies } from '../../control/control-options';
import { CommandExit } from '../command-exit';
import { processIo, type CommandIo } from '../command-io';
import { commaList, seconds } from '../option-parsers';
import { appCommand, printJson, withApp, type AppCommandOptions } from './app-command';
import { EXIT_NO_REPLY, errorOf, renderNodeReplies, REPLY_TIMEOUT_HELP } from './node-replies';

interface ControlCommandOptions extends AppCommandOptions {
  destination?: string[];
  timeout?: number;
}

type Send = (
  control: Control,
  args: string[],
  options: ControlOptions & { reply: true },
) => Promise<NodeReplies<ControlAnswer>>;

/** Each command, its arguments as `conveyor control <command> --help` shows them, and how to send it. */
const COMMANDS: Record<string, { usage: string; send: Send }> = {
  rate_limit: {
    usage: '<task> <rate>   e.g. tasks.add 10/s (0 removes the limit)',
    send: (c, [task, rate], o) => c.rateLimit(need(task, 'task'), need(rate, 'rate'), o),
  },
  time_limit: {
    usage: '<task> <soft> [hard]   in seconds',
    send: (c, [task, soft, hard], o) =>
      c.timeLimit(
        need(task, 'task'),
        { soft: number(need(soft, 'soft')), hard: hard === undefined ? null : number(hard) },
        o,
      ),
  },
  pool_grow: {
    usage: `[n]   default ${DEFAULT_POOL_RESIZE_STEP}`,
    send: (c, [n], o) => c.poolGrow(n === undefined ? undefined : number(n), o),
  },
  pool_shrink: {
    usage: `[n]   default ${DEFAULT_POOL_RESIZE_STEP}`,
    send: (c, [n], o) => c.poolShrink(n === undefined ? undefined : number(n), o),
  },
  autoscale: {
    usage: '<max> <min>',
    send: (c, [max, min], o) => c.autoscale(number(need(max, 'max')), number(need(min, 'min')), o),
  },
  add_consumer: {
    usage: '<queue>',
    send: (c, [queue], o) => c.addConsumer(need(queue, 'queue'), o),
  },
  cancel_consumer: {
    usage: '<queue>',
    send: (c, [queue], o) => c.cancelConsumer(need(queue, 'queue'), o),
  },
  shutdown: { usage: '', send: (c, _, o) => c.shutdown(o) },
  enable_events: { usage: '', send: (c, _, o) => c.enableEvents(o) },
  disable_events: { usage: '', send: (c, _, o) => c.disableEvents(o) },
};

/** Exit code when a worker answered with an error. */
export const EXIT_CONTROL_ERROR = 1;

/**
 * `conveyor control <command>`: changes what workers do (Conveyor's and Python Celery's alike)
 * through the app's control client, and shows each worker's answer.
 */
export function controlCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(
      program,
      'control',
      'Change what workers do: rate and time limits, pool size, consumers, events, shutdown',
    )
      .addArgument(new Argument('<command>', 'what to do').choices(Object.keys(COMMANDS)))
      .argument('[args...]', "the command's arguments (see below)")
      .option(
        '-d, --destination <nodes>',
        'comma-separated worker names (default: every worker)',
        commaList,
      )
      .option('-t, --timeout <seconds>', REPLY_TIMEOUT_HELP, seconds)
      .addHelpText(
        'after',
        `
Commands and their arguments:
${Object.entries(COMMANDS)
  .map(([name, { usage }]) => `  ${name} ${usage}`)
  .join('\n')}

Exit codes: 0 every worker that answered said ok; ${EXIT_CONTROL_ERROR} a worker answered with an error;
${EXIT_NO_REPLY} no worker answered within the timeout; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} broker unreachable.`,
      )
      .action((command: string, args: string[], options: ControlCommandOptions) =>
        withApp(options, io, async ({ app, print, paint }) => {
          const replies = await COMMANDS[command]!.send(app.control, args, {
            destination: options.destination,
            timeoutMs: options.timeout,
            reply: true,
          });
          const byNode: Record<string, ControlAnswer> = Object.assign({}, ...replies);
          if (options.json) printJson(io, byNode);
          else print(renderNodeReplies(byNode, (reply) => [(reply as { ok: string }).ok], paint));
          if (Object.keys(byNode).length === 0) {
            throw new CommandExit(EXIT_NO_REPLY, 'no nodes replied within the timeout');
          }
          const failed = Object.entries(byNode).filter(([, reply]) => errorOf(reply));
          if (failed.length > 0) {
            throw new CommandExit(
              EXIT_CONTROL_ERROR,
              `${failed.map(([node]) => node).join(', ')} answered with an error`,
            );
          }
        }),
      );
  };
}

function need(value: string | undefined, name: string): string {
  if (value === undefined) throw new InvalidArgumentError(`missing argument <${name}>`);
  return value;
}

function number(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`'${text}' is not a number`);
  return n;
}
