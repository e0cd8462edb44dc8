import { DEFAULT_CONTROL_TIMEOUT_MS, EXIT_UNAVAILABLE } from '../../defaults';
import { CommandExit } from '../command-exit';
import type { Painter } from '../output/paint';

/** Exit code when no worker replied in time (Celery's `inspect` and `status` use the same). */
export const EXIT_NO_REPLY = EXIT_UNAVAILABLE;

/** The help of `-t, --timeout` of the commands that wait for workers' replies. */
export const REPLY_TIMEOUT_HELP = `how long to wait for replies (default: ${DEFAULT_CONTROL_TIMEOUT_MS / 1000})`;

/**
 * Celery's layout of replies by node: `-> host: OK` and the reply's lines indented below, then
 * how many nodes answered. Throws {@link CommandExit} with {@link EXIT_NO_REPLY} when none did.
 */
export function renderNodeReplies(
  replies: Record<string, unknown>,
  describe: (reply: unknown) => string[],
  paint: Painter,
): string {
  const nodes = Object.keys(replies).sort();
  if (nodes.length === 0) {
    throw new CommandExit(EXIT_NO_REPLY, 'no nodes replied within the timeout');
  }
  const lines: string[] = [];
  for (const node of nodes) {
    const reply = replies[node];
    const error = errorOf(reply);
    lines.push(
      `-> ${paint(node, 'cyan')}: ${error ? paint('ERROR', 'red') : paint('OK', 'green')}`,
    );
    for (const line of error ? [error] : describe(reply)) lines.push(`    ${line}`);
  }
  lines.push('', `${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'} online.`);
  return lines.join('\n');
}

/** The text of an `{error: ...}` reply. */
export function errorOf(reply: unknown): string | undefined {
  const error = (reply as { error?: unknown } | null)?.error;
  return typeof error === 'string' ? error : undefined;
}
