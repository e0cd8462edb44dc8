import type { Command } from 'commander';
import { EXIT_UNAVAILABLE, EXIT_USAGE } from '../../defaults';
import { requireCapability } from '../../capability/capability';
import { ConfigError, UnroutableError } from '../../errors';
import { CommandExit } from '../command-exit';
import { processIo, type CommandIo } from '../command-io';
import { confirm } from '../confirm';
import { commaList } from '../option-parsers';
import { appCommand, printJson, withApp, type AppCommandOptions } from './app-command';

interface PurgeOptions extends AppCommandOptions {
  queues: string[];
  force?: boolean;
}

/** Exit code when the operator answers anything but yes. */
export const EXIT_DECLINED = 1;

/**
 * `conveyor purge -Q a,b`: deletes the ready messages of exactly the queues named (not their
 * dead letters, not the delayed ones), after a yes on the terminal unless `-f`.
 */
export function purgeCommand(io: CommandIo = processIo()) {
  return (program: Command): void => {
    appCommand(program, 'purge', 'Delete the waiting messages of the queues named with -Q')
      .requiredOption(
        '-Q, --queues <names>',
        'comma-separated queues to purge (only these)',
        commaList,
      )
      .option('-f, --force', 'purge without asking (required without a terminal)')
      .addHelpText(
        'after',
        `
Only the ready messages of the queues named go: messages a worker holds unacknowledged, the
<queue>.dead dead letters (name <queue>.dead to purge them) and delayed messages stay. Without
-f it shows what it would delete and asks; without a terminal to ask on it refuses.
Exit codes: 0 purged; ${EXIT_DECLINED} declined at the prompt; ${EXIT_USAGE} bad usage, a queue that does not exist, or no
terminal and no -f; ${EXIT_UNAVAILABLE} broker unreachable.`,
      )
      .action((options: PurgeOptions) =>
        withApp(options, io, async ({ app, print }) => {
          const transport = requireCapability(
            app.transport,
            'queueAdmin',
            'conveyor purge',
            '@conveyor/amqp-transport',
          );
          const queues = [...new Set(options.queues)];
          const statistics = await Promise.all(
            queues.map((queue) =>
              transport.queueStats(queue).catch((error: unknown) => {
                if (error instanceof UnroutableError) return undefined;
                throw error;
              }),
            ),
          );
          const missing = queues.filter((_, i) => statistics[i] === undefined);
          if (missing.length > 0) {
            throw new ConfigError(`no such queue: ${missing.join(', ')}; nothing was purged`);
          }
          if (!options.force) {
            const waiting = queues.map((q, i) => `${q} (${statistics[i]!.ready} ready)`);
            await confirmPurge(io, `Purge ${waiting.join(', ')}? This cannot be undone. [y/N] `);
          }
          const purged: Record<string, number> = {};
          for (const queue of queues) purged[queue] = await transport.purgeQueue(queue);
          if (options.json) printJson(io, { purged });
          else for (const queue of queues) print(`purged ${purged[queue]} from ${queue}`);
        }),
      );
  };
}

/** Asks `question` on the terminal; anything but y/yes ends the command. */
async function confirmPurge(io: CommandIo, question: string): Promise<void> {
  const answer = await confirm(
    question,
    { input: io.stdin, output: io.stderr, interactive: io.stdin.isTTY === true },
    'purge asks before deleting, and there is no terminal to ask on: pass -f to purge',
  );
  if (!answer) throw new CommandExit(EXIT_DECLINED, 'not purged');
}
