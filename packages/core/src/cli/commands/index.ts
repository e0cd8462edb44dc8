import type { CommandModule } from '../command-module';
import { dlqCommand } from './dlq';
import { workerCommand } from './worker';

/** Every `conveyor` command, in the order `conveyor --help` lists them. */
export const COMMANDS: readonly CommandModule[] = [workerCommand, dlqCommand];
