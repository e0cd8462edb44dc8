import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
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
        taskEvents: false,
        heartbeat: true,
      });
    });

    it('reads -E, --task-events and --without-heartbeat as switches', () => {
      expect(parseWorkerCommand(['worker', '-E', '--app', 'a.js'])).toMatchObject({
        app: 'a.js',
        taskEvents: true,
        heartbeat: true,
      });
      expect(
        parseWorkerCommand(['worker', '--app', 'a.js', '--task-events', '--without-heartbeat']),
      ).toMatchObject({ taskEvents: true, heartbeat: false });
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

    const runSlowWorker = async (
      signals: number,
      shutdownTimeoutMs: number,
    ): Promise<{ code: number | null; elapsedMs: number }> => {
      const child = spawn(
        process.execPath,
        [
          cli,
          'worker',
          '--app',
          join(__dirname, 'fixtures/slow-app.js'),
          '--shutdown-timeout',
          String(shutdownTimeoutMs),
        ],
        { cwd: root },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (output.includes('task running')) {
            clearInterval(check);
            resolve();
          }
        }, 20);
      });
      const started = Date.now();
      child.kill('SIGTERM');
      // Signals of one kind are not queued: a second one sent at once may merge with the first.
      if (signals > 1) setTimeout(() => child.kill('SIGTERM'), 300);
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { code, elapsedMs: Date.now() - started };
    };

    it('exits 1 when SIGTERM finds a task that outlives the shutdown timeout', async () => {
      const { code, elapsedMs } = await runSlowWorker(1, 500);
      expect(code).toBe(1);
      expect(elapsedMs).toBeGreaterThanOrEqual(450);
    });

    it('exits 2 before the shutdown timeout when a second signal forces the stop', async () => {
      // The timeout is far away, so only the second signal can end the worker this early.
      const { code, elapsedMs } = await runSlowWorker(2, 20_000);
      expect(code).toBe(2);
      expect(elapsedMs).toBeLessThan(10_000);
    });

    it('with two workers in one process, SIGTERM exits once both stopped, not when the idle one did', async () => {
      const child = spawn(process.execPath, [join(__dirname, 'fixtures/two-workers.js')], {
        cwd: root,
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(() => output.includes('task running'), 'the slow task to run');
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      // The busy worker finished its task before the process exited, with code 0.
      expect({ code, finished: output.includes('slow finished') }).toEqual({
        code: 0,
        finished: true,
      });
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
