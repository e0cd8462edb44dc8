import type { Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import { processIo, type CommandIo } from '../command-io';
import { seconds } from '../option-parsers';
import { appCommand, withApp, type AppCommandOptions } from './app-command';
import {
  EXIT_TASK_FAILED,
  EXIT_WAIT_TIMEOUT,
  reportOutcome,
  WAIT_TIMEOUT_HELP,
} from './task-outcome';

interface ResultOptions extends AppCommandOptions {
  wait?: boolean;
  timeout?: number;
  traceback?: boolean;
}

/** `conveyor result <id>`: a task's state and what it stored, from the result backend. */
export function resultCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(program, 'result', "Show a task's state and result from the result backend")
      .argument('<id>', 'the task id')
      .option('--wait', 'wait until the task is finished')
      .option('--timeout <seconds>', WAIT_TIMEOUT_HELP, seconds)
      .option('--traceback', 'print the traceback of a failure')
      .addHelpText(
        'after',
        `
Prints the id and state (PENDING when nothing is stored), then the result, the progress meta,
or the exception. Exit codes: 0 succeeded or not finished; ${EXIT_TASK_FAILED} failed or revoked;
${EXIT_WAIT_TIMEOUT} --wait timed out; ${EXIT_USAGE} bad usage or no result backend; ${EXIT_UNAVAILABLE} unreachable.`,
      )
      .action((id: string, options: ResultOptions) =>
        withApp(options, io, (context) =>
          reportOutcome(context, io, id, { ...options, timeoutMs: options.timeout }),
        ),
      );
  };
}
