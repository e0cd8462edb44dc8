import type { Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import { processIo, type CommandIo } from '../command-io';
import { appCommand, printJson, withApp, type AppCommandOptions } from './app-command';

interface RevokeOptions extends AppCommandOptions {
  terminate?: boolean;
}

/**
 * `conveyor revoke <id...>`: stores REVOKED and broadcasts Celery's revoke, so Conveyor and
 * Python workers skip the tasks (and, with `--terminate`, abort them if running).
 */
export function revokeCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(program, 'revoke', 'Revoke tasks on every worker, Conveyor or Celery')
      .argument('<ids...>', 'task ids')
      .option('--terminate', 'also abort them if they are running')
      .addHelpText(
        'after',
        `
Stores REVOKED in the result backend (so a worker that starts later skips them too) and
broadcasts Celery's revoke on celery.pidbox. Exit codes: 0 revoked; ${EXIT_USAGE} bad usage; ${EXIT_UNAVAILABLE} unreachable.`,
      )
      .action((ids: string[], options: RevokeOptions) =>
        withApp(options, io, async ({ app, print }) => {
          const terminate = options.terminate ?? false;
          await app.revoke(ids, { terminate });
          if (options.json) printJson(io, { revoked: ids, terminate });
          else for (const id of ids) print(`revoked ${id}${terminate ? ' (terminate)' : ''}`);
        }),
      );
  };
}
