import { PassThrough } from 'node:stream';
import { Command, CommanderError } from 'commander';
import type { Conveyor } from '@conveyor/core';
import { exitCodeOf } from '../../packages/core/src/cli/exit-codes';
import type { CommandIo, InputStream } from '../../packages/core/src/cli/command-io';

/** A command module as the CLI registers it. */
export type CommandModuleFactory = (io: CommandIo) => (program: Command) => void;

/** What one run of a command printed and how it ended. */
export interface CommandRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** How a test runs a command: the app its `--app` loads, its terminal, its answers. */
export interface HarnessOptions {
  /** Builds the app `--app` names (a new one per run: a command closes its app). */
  app: () => Conveyor;
  /** Pretend stdout and stdin are a terminal. */
  tty?: boolean;
  /** Typed at the prompt (with `tty`). */
  answer?: string;
  env?: Record<string, string | undefined>;
  /** Ends a long-running command (`events`). */
  signal?: AbortSignal;
  /** Sees each write as it happens, for a test that waits for a line. */
  watch?: (stream: 'stdout' | 'stderr', text: string) => void;
}

/**
 * Runs `conveyor <argv>` in this process with the given command modules, capturing output and
 * mapping the outcome to the exit code the CLI would end with.
 */
export async function runCommand(
  modules: readonly CommandModuleFactory[],
  argv: readonly string[],
  options: HarnessOptions,
): Promise<CommandRun> {
  let stdout = '';
  let stderr = '';
  const stdin = new PassThrough() as PassThrough & InputStream;
  stdin.isTTY = options.tty ?? false;
  if (options.answer !== undefined) stdin.end(`${options.answer}\n`);
  const io: CommandIo = {
    stdout: {
      write: (text: string) => {
        stdout += text;
        options.watch?.('stdout', text);
      },
      isTTY: options.tty ?? false,
    },
    stderr: {
      write: (text: string) => {
        stderr += text;
        options.watch?.('stderr', text);
      },
      isTTY: options.tty ?? false,
    },
    stdin,
    env: options.env ?? {},
    loadApp: async () => options.app(),
    ...(options.signal && { signal: options.signal }),
  };
  const program = new Command('conveyor').exitOverride().configureOutput({
    writeOut: (text) => (stdout += text),
    writeErr: (text) => (stderr += text),
  });
  for (const module of modules) module(io)(program);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (!(error instanceof CommanderError)) stderr += `${(error as Error).message}\n`;
    return { code: exitCodeOf(error), stdout, stderr };
  }
}
