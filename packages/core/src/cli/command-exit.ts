/**
 * Ends a command with `exitCode` and `message` (on stderr): an outcome the command reports
 * rather than a fault, such as a task that failed (`call --wait`), a purge the operator
 * declined, or no worker that replied.
 */
export class CommandExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CommandExit';
  }
}
