import { InvalidArgumentError, type Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import type { SendOptions } from '../../producer/send-options';
import { processIo, type CommandIo } from '../command-io';
import { seconds } from '../option-parsers';
import { appCommand, printJson, withApp, type AppCommandOptions } from './app-command';
import {
  EXIT_TASK_FAILED,
  EXIT_WAIT_TIMEOUT,
  reportOutcome,
  WAIT_TIMEOUT_HELP,
} from './task-outcome';

interface CallOptions extends AppCommandOptions {
  args: unknown[];
  kwargs: Record<string, unknown>;
  countdown?: number;
  eta?: Date;
  expires?: number;
  queue?: string;
  wait?: boolean;
  timeout?: number;
  traceback?: boolean;
}

/**
 * `conveyor call <task>`: sends a task by name (the app's, or one a Python worker runs) and
 * prints its id; with `--wait`, its outcome.
 */
export function callCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(program, 'call', 'Send a task by name; print its id, or its result with --wait')
      .argument('<task>', "the task's name, e.g. tasks.add")
      .option('-a, --args <json>', 'positional arguments, a JSON array', jsonArray, [])
      .option('-k, --kwargs <json>', 'keyword arguments, a JSON object', jsonObject, {})
      .option('--countdown <seconds>', 'run no sooner than this many seconds from now', seconds)
      .option('--eta <time>', 'run no sooner than this ISO 8601 time', isoTime)
      .option('--expires <seconds>', 'revoke it if not started within this many seconds', seconds)
      .option(
        '-Q, --queue <name>',
        "queue to send to (default: the task's, else the app's default)",
      )
      .option('--wait', 'wait for the result and print it')
      .option('--timeout <seconds>', WAIT_TIMEOUT_HELP, seconds)
      .option('--traceback', 'print the traceback of a failure')
      .addHelpText(
        'after',
        `
Exit codes: 0 sent (or, with --wait, succeeded); ${EXIT_TASK_FAILED} the task failed or was revoked;
${EXIT_WAIT_TIMEOUT} --wait timed out; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} broker unreachable.`,
      )
      .action((task: string, options: CallOptions) =>
        withApp(options, io, async (context) => {
          const send: SendOptions = { kwargs: options.kwargs };
          if (options.countdown !== undefined) send.countdownMs = options.countdown;
          if (options.eta !== undefined) send.eta = options.eta;
          if (options.expires !== undefined) send.expires = options.expires;
          if (options.queue !== undefined) send.queue = options.queue;
          const result = await context.app.send(task, options.args, send);
          if (options.wait) {
            await reportOutcome(context, io, result.id, {
              wait: true,
              timeoutMs: options.timeout,
              json: options.json,
              traceback: options.traceback,
            });
          } else if (options.json) {
            printJson(io, { id: result.id, task });
          } else {
            context.print(result.id);
          }
        }),
      );
  };
}

function jsonArray(text: string): unknown[] {
  const value = parseJson(text);
  if (!Array.isArray(value)) throw new InvalidArgumentError('must be a JSON array, e.g. [2, 3]');
  return value;
}

function jsonObject(text: string): Record<string, unknown> {
  const value = parseJson(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError('must be a JSON object, e.g. {"x": 1}');
  }
  return value as Record<string, unknown>;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`is not JSON (${(error as Error).message})`);
  }
}

function isoTime(text: string): Date {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError('must be an ISO 8601 time');
  return date;
}
