import type { Command } from 'commander';
import type * as cliMain from '../../src/cli/main';
import * as actual from '../../src/defaults';

/**
 * defaults.ts with every value the CLI's help mentions changed to one no help would write by
 * chance: a help that prints these read them from defaults.ts rather than repeating a literal.
 */
const CHANGED = {
  DEFAULT_CONCURRENCY: 37,
  DEFAULT_PREFETCH_MULTIPLIER: 5,
  DEFAULT_SHUTDOWN_TIMEOUT_MS: 12_345,
  DEFAULT_MAX_DELIVERIES: 7,
  DEFAULT_GET_TIMEOUT_MS: 42_000,
  DEFAULT_CONTROL_TIMEOUT_MS: 3_000,
  DEFAULT_POOL_RESIZE_STEP: 4,
  DEFAULT_DEAD_LETTER_PAGE_SIZE: 23,
  EXIT_USAGE: 164,
  EXIT_UNAVAILABLE: 169,
  EXIT_SOFTWARE: 170,
} satisfies Partial<Record<keyof typeof actual, number>>;

/** The `conveyor` program built on the changed defaults. */
function programOnChangedDefaults(): Command {
  let program: Command | undefined;
  jest.isolateModules(() => {
    jest.doMock('../../src/defaults', () => ({ ...actual, ...CHANGED }));
    const { createProgram } = jest.requireActual<typeof cliMain>('../../src/cli/main');
    program = createProgram();
  });
  return program!;
}

/** The whole help of a command, as `--help` prints it (the text after the options included). */
function helpOf(command: Command): string {
  let text = '';
  // Wide, so that no line wraps between an option and its default.
  command.configureOutput({ writeOut: (chunk) => (text += chunk), getOutHelpWidth: () => 500 });
  command.outputHelp();
  return text;
}

function commandAt(program: Command, path: string[]): Command {
  return path.reduce((parent, name) => parent.commands.find((c) => c.name() === name)!, program);
}

function everyCommand(command: Command): Command[] {
  return [command, ...command.commands.flatMap(everyCommand)];
}

describe('the CLI help reads the defaults it shows from defaults.ts', () => {
  const program = programOnChangedDefaults();
  const help = (...path: string[]): string => helpOf(commandAt(program, path));

  it('worker: concurrency, prefetch multiplier, shutdown timeout, max deliveries', () => {
    const text = help('worker');
    expect(text).toMatch(/--concurrency <n> +tasks run at once \(default: 37\)/);
    expect(text).toMatch(/--prefetch-multiplier <n> +prefetch = concurrency x this \(default: 5\)/);
    expect(text).toMatch(/--shutdown-timeout <ms>[^(]+\(default: 12345\)/);
    expect(text).toMatch(/--max-deliveries <n>[^(]+\(default: 7\)/);
  });

  it.each([['call'], ['result']])('%s: how long --wait waits, in seconds', (command) => {
    expect(help(command)).toMatch(/--timeout <seconds>[^(]+\(default: the app's getTimeoutMs, 42 /);
  });

  it.each([['status'], ['inspect'], ['control']])(
    '%s: how long it waits for replies, in seconds',
    (command) => {
      expect(help(command)).toMatch(
        /--timeout <seconds> +how long to wait for replies \(default: 3\)/,
      );
    },
  );

  it('control: the step of pool_grow and pool_shrink', () => {
    const text = help('control');
    expect(text).toMatch(/pool_grow \[n\] +default 4\n/);
    expect(text).toMatch(/pool_shrink \[n\] +default 4\n/);
  });

  it('dlq list: the page size', () => {
    expect(help('dlq', 'list')).toMatch(/--limit <n> +most dead letters to show \(default: 23\)/);
  });

  it('no command prints a numeric default, or a usage or unavailable exit code, as a literal', () => {
    const shown = new Set([
      ...Object.values(CHANGED).map(String),
      String(CHANGED.DEFAULT_GET_TIMEOUT_MS / 1000),
      String(CHANGED.DEFAULT_CONTROL_TIMEOUT_MS / 1000),
      // `dlq list --offset`: skipping none is where a page starts, not a setting.
      '0',
    ]);
    const literals: string[] = [];
    for (const command of everyCommand(program)) {
      const text = helpOf(command);
      for (const [match, value] of text.matchAll(/default:?[^\d\n)]{0,40}?(\d+)/g)) {
        if (!shown.has(value!)) literals.push(`${command.name()}: ${match}`);
      }
      for (const [line] of text.matchAll(/^.*(?<!\d)(64|69|70)(?!\d).*$/gm)) {
        literals.push(`${command.name()}: ${line}`);
      }
    }
    expect(literals).toEqual([]);
  });
});
