import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { Conveyor } from '../../app/conveyor';
import type { DeadLetter } from '../../dead-letters/dead-letter';
import {
  DeadLetters,
  type DeadLetterPage,
  type DeadLetterSelection,
} from '../../dead-letters/dead-letters';
import { DEFAULT_DEAD_LETTER_PAGE_SIZE, EXIT_UNAVAILABLE } from '../../defaults';
import { ConfigError, ConnectionError } from '../../errors';
import { deadLetterQueueName } from '../../transport/transport';
import { loadAppModule } from '../app-module';
import type { CommandModule } from '../command-module';
import { nonNegativeInteger, positiveInteger } from '../option-parsers';

/** Options every `conveyor dlq` subcommand takes. */
interface DlqOptions {
  app: string;
  json?: boolean;
}

interface ListOptions extends DlqOptions {
  offset: number;
  limit: number;
}

interface SelectOptions extends DlqOptions {
  id?: string[];
  all?: boolean;
}

interface ReplayCommandOptions extends SelectOptions {
  newId?: boolean;
}

interface PurgeCommandOptions extends SelectOptions {
  force?: boolean;
}

/** Where a purge asks for confirmation; the process's terminal unless a test gives its own. */
export interface PromptIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** True when a person can answer (stdin is a terminal). */
  interactive: boolean;
}

/**
 * `conveyor dlq list|replay|purge <queue>`: the dead letters of `<queue>.dead`, through
 * {@link DeadLetters} on the broker and backend of the `--app` module.
 */
export const dlqCommand: CommandModule = (program: Command) => {
  const dlq = program
    .command('dlq')
    .description('Inspect, replay and purge the dead letters of a queue (<queue>.dead)');
  const appOption = (command: Command): Command =>
    command
      .requiredOption('-A, --app <module>', 'module (path) exporting the app as `app` or default')
      .option('--json', 'print JSON instead of text');
  const selection = (command: Command): Command =>
    command
      .option('--id <ids...>', 'the task ids to act on (several may follow)')
      .option('--all', 'act on every dead letter of the queue');

  appOption(dlq.command('list <queue>'))
    .description('List dead letters (id, task, reason, time, redeliveries), removing nothing')
    .option('--offset <n>', 'dead letters to skip from the head', nonNegativeInteger, 0)
    // Commander prints the default itself.
    .option(
      '--limit <n>',
      'most dead letters to show',
      positiveInteger,
      DEFAULT_DEAD_LETTER_PAGE_SIZE,
    )
    .action((queue: string, options: ListOptions) =>
      withApp(options, 'list', [], async (app) => {
        const page = await deadLettersOf(app).list(queue, options);
        print(options.json ? JSON.stringify(pageJson(page)) : pageText(queue, page));
      }),
    );

  selection(appOption(dlq.command('replay <queue>')))
    .description(
      'Publish dead letters to <queue> again (confirmed, then removed from <queue>.dead); ' +
        'the stored result of each id is reset so its callers wait for the new run',
    )
    .option('--new-id', 'send each under a new task id, keeping the old FAILURE stored')
    .action(async (queue: string, options: ReplayCommandOptions) => {
      const which = selected(options);
      const replayed: Array<{ id: string | undefined; newId?: string }> = [];
      await withApp(options, 'replay', replayed, async (app) => {
        const report = await deadLettersOf(app).replay(queue, which, {
          newId: options.newId ?? false,
          onReplayed: (r) => {
            replayed.push(r);
            // Each as it is done, so a failure halfway still shows what was replayed.
            if (!options.json)
              print(`replayed ${r.id ?? '(no id)'}${r.newId ? ` as ${r.newId}` : ''}`);
          },
        });
        if (options.json) {
          print(JSON.stringify(report));
          return;
        }
        for (const id of report.keptAfterReplay)
          print(`warning: ${id ?? '(no id)'} was replayed but its dead letter is still there`);
        for (const id of report.expired)
          print(`warning: ${id ?? '(no id)'} had expired: a worker will store it REVOKED unrun`);
        for (const id of report.notFound) print(`not found: ${id}`);
        print(`${report.replayed.length} replayed to '${queue}'`);
      });
    });

  selection(appOption(dlq.command('purge <queue>')))
    .description('Delete dead letters for good (asks first unless -f)')
    .option('-f, --force', 'do not ask (needed without a terminal)')
    .action(async (queue: string, options: PurgeCommandOptions) => {
      const which = selected(options);
      const purged: Array<string | undefined> = [];
      await withApp(options, 'purge', purged, async (app) => {
        const io: PromptIo = {
          input: process.stdin,
          output: process.stdout,
          interactive: process.stdin.isTTY === true,
        };
        if (!options.force && !(await confirmPurge(queue, which, io))) {
          print('nothing deleted');
          return;
        }
        const report = await deadLettersOf(app).purge(queue, which, {
          onPurged: (id) => {
            purged.push(id);
            if (!options.json) print(`deleted ${id ?? '(no id)'}`);
          },
        });
        if (options.json) {
          print(JSON.stringify(report));
          return;
        }
        for (const id of report.notFound) print(`not found: ${id}`);
        print(`${report.purged} deleted from '${deadLetterQueueName(queue)}'`);
      });
    });
};

/**
 * Asks before a purge. Refuses outright without a terminal: nobody could answer, and deleting
 * without an answer is not something to do by default.
 */
export async function confirmPurge(
  queue: string,
  which: DeadLetterSelection,
  io: PromptIo,
): Promise<boolean> {
  if (!io.interactive) {
    throw new ConfigError(
      'dlq purge deletes dead letters for good and asks first, but there is no terminal to ' +
        'ask on: pass -f to purge without asking',
    );
  }
  const what =
    'ids' in which
      ? `the dead letters of ${which.ids.join(', ')}`
      : `every dead letter of '${deadLetterQueueName(queue)}'`;
  const prompt = createInterface({ input: io.input, output: io.output, terminal: false });
  try {
    const answer = await prompt.question(`Delete ${what} for good? [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

function deadLettersOf(app: Conveyor): DeadLetters {
  return new DeadLetters({ transport: app.transport, backend: app.backend });
}

/**
 * Loads the app (not its `instances`: dead letters need no task service), runs `work`, closes the
 * app's connections, and ends the process: whatever else the app module holds open (a pool, a
 * timer) must not keep a finished command running.
 *
 * A connection lost once the work began is not "unreachable at startup": the error says what was
 * done before it (`done`, already printed one by one, or printed now as JSON) and that the rest
 * is still in the dead-letter queue, and the process ends with 69.
 */
async function withApp(
  options: DlqOptions,
  command: 'list' | 'replay' | 'purge',
  done: readonly unknown[],
  work: (app: Conveyor) => Promise<void>,
): Promise<never> {
  const { app } = await loadAppModule(options.app);
  let code = 0;
  try {
    await work(app);
  } catch (error) {
    if (!(error instanceof ConnectionError)) throw error;
    if (options.json && command !== 'list') print(JSON.stringify({ done, interrupted: true }));
    const verb = command === 'replay' ? 'replayed' : 'deleted';
    const where = options.json ? 'in the JSON above' : 'listed above';
    const outcome =
      command === 'list'
        ? 'nothing was removed'
        : `${done.length} ${verb} before that (${where}); what was not done is still in the ` +
          'dead-letter queue: run the command again';
    process.stderr.write(
      `conveyor: dlq ${command} stopped: the broker or result backend could not be reached or ` +
        `the connection was lost: ${error.message}; ${outcome}\n`,
    );
    code = EXIT_UNAVAILABLE;
  } finally {
    await app.close().catch(() => undefined);
  }
  process.exit(code);
}

function selected(options: SelectOptions): DeadLetterSelection {
  const ids = options.id ?? [];
  if (options.all && ids.length > 0) throw new ConfigError('give --id or --all, not both');
  if (options.all) return { all: true };
  if (ids.length > 0) return { ids };
  throw new ConfigError('say which dead letters: --id <ids...> or --all');
}

function pageJson(page: DeadLetterPage) {
  return { ...page, items: page.items.map(itemJson) };
}

function itemJson(d: DeadLetter) {
  return {
    id: d.id ?? null,
    task: d.task ?? null,
    reason: d.reason,
    deadLetteredBy: d.deadLetteredBy,
    deadLetteredAt: d.deadLetteredAt?.toISOString() ?? null,
    redeliveries: d.redeliveries ?? null,
  };
}

function pageText(queue: string, page: DeadLetterPage): string {
  if (page.items.length === 0) {
    return page.total === 0
      ? `'${deadLetterQueueName(queue)}' is empty`
      : `no dead letters past offset ${page.offset} (${page.total} in all)`;
  }
  const rows = page.items.map((d) => [
    d.id ?? '(no id)',
    d.task ?? '(no task)',
    d.deadLetteredAt?.toISOString() ?? '-',
    d.redeliveries === undefined ? '-' : String(d.redeliveries),
    d.deadLetteredBy,
    d.reason,
  ]);
  const header = ['ID', 'TASK', 'DEAD-LETTERED AT', 'REDELIVERIES', 'BY', 'REASON'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  const first = page.offset + 1;
  const last = page.offset + page.items.length;
  const more = page.nextOffset === undefined ? '' : `; next page: --offset ${page.nextOffset}`;
  return [line(header), ...rows.map(line), `${first}-${last} of ${page.total}${more}`].join('\n');
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}
