import type { CommandModule } from '../command-module';
import { callCommand } from './call';
import { controlCommand } from './control';
import { dlqCommand } from './dlq';
import { eventsCommand } from './events';
import { inspectCommand } from './inspect';
import { purgeCommand } from './purge';
import { queuesCommand } from './queues';
import { resultCommand } from './result';
import { revokeCommand } from './revoke';
import { statusCommand } from './status';
import { workerCommand } from './worker';

/** Every `conveyor` command, in the order `conveyor --help` lists them. */
export const COMMANDS: readonly CommandModule[] = [
  workerCommand,
  queuesCommand(),
  purgeCommand(),
  dlqCommand,
  callCommand(),
  resultCommand(),
  revokeCommand(),
  statusCommand(),
  inspectCommand(),
  controlCommand(),
  eventsCommand(),
];
