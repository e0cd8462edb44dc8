import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError } from '@conveyor/core';
import { parseWorkerCommand } from '../../src/cli/cli';

const root = join(__dirname, '../../../..');
const cli = join(root, 'packages/core/dist/cli/cli.js');

describe('conveyor CLI', () => {
  describe('parses the worker command', () => {
    it('reads --app, --queues and --concurrency', () => {
      expect(
        parseWorkerCommand([
          'worker',
          '--app',
          'dist/app.js',
          '--queues',
          'a, b',
          '--concurrency=4',
        ]),
      ).toEqual({
        app: 'dist/app.js',
        queues: ['a', 'b'],
        concurrency: 4,
        prefetchMultiplier: undefined,
      });
    });

    it.each([
      [['serve'], /unknown command 'serve'/],
      [['worker'], /--app is required/],
      [['worker', '--app'], /--app needs a value/],
      [['worker', '--app', 'x', '--concurrency', '0'], /--concurrency must be a positive integer/],
      [['worker', '--app', 'x', '--verbose', '1'], /unknown option '--verbose'/],
    ])('refuses %j', (argv, message) => {
      expect(() => parseWorkerCommand(argv)).toThrow(ConfigError);
      expect(() => parseWorkerCommand(argv)).toThrow(message);
    });
  });

  describe('runs a worker from the built package', () => {
    beforeAll(() => {
      execFileSync('npx', ['tsc', '-b', 'packages/core'], { cwd: root, stdio: 'inherit' });
    }, 120_000);

    it('loads the app module, runs tasks, and exits 0 on SIGTERM after a graceful stop', async () => {
      const child = spawn(
        process.execPath,
        [cli, 'worker', '--app', join(__dirname, 'fixtures/math-app.js'), '--concurrency', '2'],
        {
          cwd: root,
        },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(output).toMatch(/worker conveyor-\d+@.+ consuming celery \(concurrency 2\)/);
      expect(output).toContain('math.add(2, 3) = 5');
      expect(code).toBe(0);
    });

    it('exits 64 with a clear message when the module exports no app', async () => {
      const child = spawn(
        process.execPath,
        [cli, 'worker', '--app', join(__dirname, 'fixtures/no-app.js')],
        { cwd: root },
      );
      let output = '';
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(64);
      expect(output).toContain(
        'no-app.js exports no Conveyor app (export it as `app` or as the default export)',
      );
    });
  });
});
