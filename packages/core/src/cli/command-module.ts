import type { Command } from 'commander';

/**
 * One `conveyor` command: a function that adds the command, its options and its action to the
 * program. Each lives in a module of its own under `commands/` and is listed in
 * `commands/index.ts`; the action throws to fail (see `exit-codes.ts` for the codes).
 */
export type CommandModule = (program: Command) => void;
