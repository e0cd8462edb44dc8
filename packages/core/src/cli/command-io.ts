import type { Conveyor } from '../app/conveyor';

/** Where a command writes and reads, and how it loads `--app`: the process's, or a test's. */
export interface CommandIo {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: InputStream;
  /** The environment (`NO_COLOR`, `FORCE_COLOR`, `TERM`). */
  env: Record<string, string | undefined>;
  /** Loads the app module `--app` names; by default imports it. */
  loadApp?: (modulePath: string) => Promise<Conveyor>;
  /** Ends a long-running command (`events`); by default SIGINT or SIGTERM does. */
  signal?: AbortSignal;
}

/** The part of a writable stream a command uses. */
export interface OutputStream {
  write(text: string): unknown;
  /** True on a terminal: colours and questions only then. */
  isTTY?: boolean;
}

/** The part of a readable stream a command uses (to ask for a confirmation). */
export interface InputStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
}

/** The process's own streams. */
export function processIo(): CommandIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
