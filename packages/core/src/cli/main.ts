import 'reflect-metadata';
import { Command, CommanderError } from 'commander';
import { ConfigError, ConnectionError, SerializationError } from '../errors';
import { COMMANDS } from './commands';
import { CommandExit } from './command-exit';
import { exitCodeOf } from './exit-codes';
import { coreVersion } from './version';

/** The `conveyor` program with every command of `commands/`. */
export function createProgram(): Command {
  const program = new Command('conveyor')
    .description('Conveyor: distributed tasks for TypeScript, wire-compatible with Python Celery')
    .version(coreVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  for (const addCommand of COMMANDS) addCommand(program);
  return program;
}

/**
 * Runs `conveyor` with `argv` (node's, program path included). A command that fails ends the
 * process with the code {@link exitCodeOf} gives; a worker that started keeps it alive until a
 * signal stops it.
 */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  try {
    await createProgram().parseAsync([...argv]);
  } catch (error) {
    // Commander has printed its own errors, help and version already.
    if (!(error instanceof CommanderError)) console.error(describe(error));
    process.exit(exitCodeOf(error));
  }
}

function describe(error: unknown): string {
  if (error instanceof CommandExit) return `conveyor: ${error.message}`;
  // Arguments the task's declared types refuse (`call`): the operator's input, not a bug.
  if (error instanceof ConfigError || error instanceof SerializationError) {
    return `conveyor: ${error.message}`;
  }
  if (error instanceof ConnectionError) return `conveyor: unreachable at startup: ${error.message}`;
  return `conveyor: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
}
