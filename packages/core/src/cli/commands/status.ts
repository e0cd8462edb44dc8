import type { Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import { processIo, type CommandIo } from '../command-io';
import { CommandExit } from '../command-exit';
import { seconds } from '../option-parsers';
import { appCommand, printJson, withApp, type AppCommandOptions } from './app-command';
import { EXIT_NO_REPLY, REPLY_TIMEOUT_HELP } from './node-replies';

interface StatusOptions extends AppCommandOptions {
  timeout?: number;
}

/** `conveyor status`: the workers online (they answered a ping), one line each. */
export function statusCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(
      program,
      'status',
      'List the workers online, Conveyor and Celery alike, one line each',
    )
      .option('-t, --timeout <seconds>', REPLY_TIMEOUT_HELP, seconds)
      .addHelpText(
        'after',
        `
A worker is online when it answers a ping within the timeout. Exit codes: 0 at least one worker
online; ${EXIT_NO_REPLY} none answered; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} broker unreachable.`,
      )
      .action((options: StatusOptions) =>
        withApp(options, io, async ({ app, print, paint }) => {
          const replies = await app.control.inspect({ timeoutMs: options.timeout }).ping();
          const nodes = Object.keys(replies).sort();
          if (options.json) printJson(io, { online: nodes });
          else {
            for (const node of nodes) print(`${node}: ${paint('OK', 'green')}`);
            if (nodes.length > 0)
              print(`\n${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'} online.`);
          }
          if (nodes.length === 0)
            throw new CommandExit(EXIT_NO_REPLY, 'no nodes replied within the timeout');
        }),
      );
  };
}
