import type { Command } from 'commander';
import type { Conveyor } from '../../app/conveyor';
import { loadAppModule } from '../app-module';
import type { CommandIo } from '../command-io';
import { painterFor, type Painter } from '../output/paint';

/** Options every command that talks to the app's broker takes. */
export interface AppCommandOptions {
  app: string;
  json?: boolean;
}

/**
 * Adds command `name` with the options every operator command shares: `-A/--app` (the module
 * that exports the app, whose broker and backend the command uses) and `--json`.
 */
export function appCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .requiredOption(
      '-A, --app <module>',
      'module (path) exporting the Conveyor app as `app` or default: its broker and backend are used',
    )
    .option('--json', 'print one JSON document for scripts instead of the human output');
}

/** What a command's action gets: the app (closed afterwards), and how to write. */
export interface CommandContext {
  app: Conveyor;
  /** Writes a line to stdout. */
  print(text: string): void;
  /** Styles for stdout: colours only on a terminal. */
  paint: Painter;
}

/** Loads the app of `--app`, runs `work` with it, and closes its connections whatever happens. */
export async function withApp<T>(
  options: AppCommandOptions,
  io: CommandIo,
  work: (context: CommandContext) => Promise<T>,
): Promise<T> {
  const app = io.loadApp ? await io.loadApp(options.app) : (await loadAppModule(options.app)).app;
  try {
    return await work({
      app,
      print: (text) => io.stdout.write(`${text}\n`),
      paint: painterFor(io.stdout, io.env),
    });
  } finally {
    await app.close();
  }
}

/** Writes `value` as one JSON document. */
export function printJson(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The queues of the app's tasks, as a worker consumes them by default. */
export function appQueues(app: Conveyor): string[] {
  return [...new Set([app.defaultQueue, ...app.tasks.map((t) => t.queue)])];
}
