import { CommanderError } from 'commander';
import { EXIT_SOFTWARE, EXIT_UNAVAILABLE, EXIT_USAGE } from '../defaults';
import { ConfigError, ConnectionError, SerializationError } from '../errors';
import { CommandExit } from './command-exit';

/**
 * The exit code for an error that ended a command: 64 for bad usage or configuration (a
 * rejected option, an app module that exports no app, task arguments the task refuses), 69 when the broker or result backend
 * cannot be reached at startup, 70 for anything else (a bug, or the app module threw); a
 * {@link CommandExit} carries its own (a failed task, a declined purge, no worker replied).
 * `--help` and `--version` end with 0.
 */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommandExit) return error.exitCode;
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
  if (error instanceof ConfigError || error instanceof SerializationError) return EXIT_USAGE;
  if (error instanceof ConnectionError) return EXIT_UNAVAILABLE;
  return EXIT_SOFTWARE;
}
