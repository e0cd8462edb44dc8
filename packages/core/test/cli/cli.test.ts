import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ConnectionError, SerializationError } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { exitCodeOf } from '../../src/cli/exit-codes';
import { createProgram } from '../../src/cli/main';
import { expandNodeName } from '../../src/cli/node-name';

const root = join(__dirname, '../../../..');
/** The committed bin shim, as npm links it. */
const bin = join(root, 'packages/core/bin/conveyor.js');
const fixture = (name: string): string => join(__dirname, 'fixtures', name);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `conveyor args…` to its end. */
function conveyor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('conveyor CLI', () => {
  describe('dlq', () => {
    it('builds no task services, and exits when done although the module holds the process', async () => {
      const run = await conveyor(['dlq', 'list', 'held', '-A', fixture('dlq-held-app.js')]);
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toBe("'held.dead' is empty\n");
    });

    it('refuses a missing --id/--all before loading the app', async () => {
      // A module that cannot load: the usage error must come first.
      const run = await conveyor(['dlq', 'replay', 'held', '-A', 'no/such/app.js']);
      expect(run.code).toBe(64);
      expect(run.stderr).toBe('conveyor: say which dead letters: --id <ids...> or --all\n');
    });

    it('names the queue when it has no dead-letter queue (exit 64, no stack)', async () => {
      const run = await conveyor(['dlq', 'list', 'nosuch', '-A', fixture('dlq-held-app.js')]);
      expect(run.code).toBe(64);
      expect(run.stderr).toMatch(
        /^conveyor: queue 'nosuch' has no dead-letter queue 'nosuch\.dead': check the queue name/,
      );
    });
  });

  describe('--hostname expands as Celery does', () => {
    it.each([
      ['worker1@%h', 'worker1@box.example.com'],
      ['worker1@%n', 'worker1@box'],
      ['%n@%d', 'box@example.com'],
      ['w%i%I@%n', 'w0@box'],
      ['box2', 'conveyor@box2'],
      ['%h', 'conveyor@box.example.com'],
      ['a%%b@%n', 'a%b@box'],
    ])('%s', (template, expected) => {
      expect(expandNodeName(template, 'box.example.com')).toBe(expected);
    });

    it('refuses an unknown %-key', () => {
      expect(() => expandNodeName('w@%x', 'box')).toThrow(ConfigError);
      expect(() => expandNodeName('w@%x', 'box')).toThrow(/unknown %x/);
    });
  });

  it('dlq list --help states each default once', () => {
    const list = createProgram()
      .commands.find((c) => c.name() === 'dlq')!
      .commands.find((c) => c.name() === 'list')!;
    const help = list.helpInformation();
    expect(help).toMatch(/--limit <n> +most dead letters to show \(default: 50\)\n/);
    expect(help).not.toMatch(/\(default: 50\) \(default: 50\)/);
  });

  it('maps errors to exit codes: 64 configuration or refused arguments, 69 unreachable, 70 anything else', () => {
    expect(exitCodeOf(new ConfigError('bad'))).toBe(64);
    expect(exitCodeOf(new SerializationError('args[0] (eventId)', 'takes a string there'))).toBe(
      64,
    );
    expect(exitCodeOf(new ConnectionError('down'))).toBe(69);
    expect(exitCodeOf(new TypeError('bug'))).toBe(70);
  });

  describe('the bin, from the built package', () => {
    beforeAll(() => {
      execFileSync('npx', ['tsc', '-b', 'packages/core'], { cwd: root, stdio: 'inherit' });
    }, 120_000);

    it('--help lists the commands, worker --help its options, --version the version', async () => {
      const help = await conveyor(['--help']);
      expect(help).toMatchObject({ code: 0, stdout: expect.stringMatching(/worker \[options\]/) });
      const workerHelp = await conveyor(['worker', '--help']);
      expect(workerHelp.code).toBe(0);
      for (const option of [
        '--app',
        '--queues',
        '--concurrency',
        '--hostname',
        '--loglevel',
        '--log-format',
        '--task-events',
        '--without-heartbeat',
      ]) {
        expect(workerHelp.stdout).toContain(option);
      }
      const version = await conveyor(['--version']);
      const { version: expected } = JSON.parse(
        readFileSync(join(root, 'packages/core/package.json'), 'utf8'),
      ) as { version: string };
      expect(version).toMatchObject({ code: 0, stdout: `${expected}\n` });
    });

    it.each([
      [['worker'], /required option '-A, --app <module>'/],
      [
        ['worker', '-A', 'x', '--concurrency', '0'],
        /option '-c, --concurrency <n>' argument '0' is invalid\. must be an integer from 1/,
      ],
      [['worker', '-A', 'x', '--verbose'], /unknown option '--verbose'/],
      [['worker', '-A', 'x', '--log-format', 'xml'], /Allowed choices are text, json/],
      [['worker', '-A', 'x', '--loglevel', 'loud'], /unknown log level 'loud'/],
      [['serve'], /unknown command 'serve'/],
    ])('exits 64 on bad usage: %j', async (args, message) => {
      const run = await conveyor(args);
      expect(run.code).toBe(64);
      expect(run.stderr).toMatch(message);
    });

    it('prints the banner and one line per task received, succeeded, failed, retried, revoked and dead-lettered', async () => {
      const run = await conveyor(['worker', '--app', fixture('log-app.js'), '-n', 'logs@%n']);
      expect(run.code).toBe(0);
      const host = expandNodeName('logs@%n');
      expect(run.stdout).toContain(`worker ${host}`);
      expect(run.stdout).toMatch(/transport: +memory/);
      expect(run.stdout).toMatch(/\. math\.boom +\(celery\)/);
      expect(run.stdout).toMatch(/: INFO\/MainProcess\] Task math\.add\[[0-9a-f-]+\] received/);
      expect(run.stdout).toMatch(/Task math\.add\[[0-9a-f-]+\] succeeded in \d+\.\d{3}s/);
      expect(run.stdout).toMatch(
        /: ERROR\/MainProcess\] Task math\.boom\[[0-9a-f-]+\] failed in \d+\.\d{3}s: RangeError: boom/,
      );
      expect(run.stdout).toMatch(
        /: WARNING\/MainProcess\] Message [0-9a-f-]+ dead-lettered to celery\.dead: task 'math\.missing' is not registered/,
      );
      expect(run.stdout).toMatch(
        /Task math\.flaky\[[0-9a-f-]+\] retry 1 in 0\.010s: Error: still down\n\[/,
      );
      expect(run.stdout).toMatch(
        /Message [0-9a-f-]+ dead-lettered to celery\.dead: retries exhausted after 1 retries; last error Error: still down/,
      );
      expect(run.stdout).toMatch(/Task math\.add\[[0-9a-f-]+\] revoked: expired/);
      expect(run.stdout).toMatch(
        /: INFO\/MainProcess\] Warm shutdown: waiting for 0 running tasks \(timeout \d+ ms\)\n/,
      );
      expect(run.stdout).toMatch(/: INFO\/MainProcess\] Stopped \(exit code 0\)\n$/);
    });

    it('--log-format json writes one JSON record per line, with the event fields', async () => {
      const run = await conveyor([
        'worker',
        '--app',
        fixture('log-app.js'),
        '--log-format',
        'json',
        '-l',
        'warning',
      ]);
      expect(run.code).toBe(0);
      const records = run.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: number; event: string; name?: string });
      // At warning level only the failures and the dead letters (named when readable) remain.
      expect(records.map((r) => [r.event, r.name ?? null, r.level])).toEqual([
        ['task-failed', 'math.boom', 50],
        ['task-failed', 'math.flaky', 50],
        ['message-dead-lettered', 'math.flaky', 40],
        ['message-dead-lettered', 'math.missing', 40],
      ]);
    });

    it('logs through the logger the app module exports', async () => {
      const run = await conveyor(['worker', '--app', fixture('log-app.js')], { LOG_TO_APP: '1' });
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/app-logger info worker-banner/);
      expect(run.stdout).toMatch(/app-logger error task-failed Task math\.boom/);
    });

    it('builds task services from the instances the app module exports', async () => {
      const run = await conveyor(['worker', '--app', fixture('service-app.js')]);
      expect(run.stdout).toContain('greeted: Hello, Ada');
      expect(run.code).toBe(0);
    });

    const runSlowWorker = async (
      signals: number,
      shutdownTimeoutMs: number,
    ): Promise<{ code: number | null; elapsedMs: number; output: string }> => {
      const child = spawn(
        process.execPath,
        [
          bin,
          'worker',
          '--app',
          fixture('slow-app.js'),
          '--shutdown-timeout',
          String(shutdownTimeoutMs),
        ],
        { cwd: root },
      );
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(() => output.includes('task running'), 'the slow task to run');
      const started = Date.now();
      child.kill('SIGTERM');
      // Signals of one kind are not queued: a second one sent at once may merge with the first.
      if (signals > 1) setTimeout(() => child.kill('SIGTERM'), 300);
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { code, elapsedMs: Date.now() - started, output };
    };

    it('exits 1 when SIGTERM finds a task that outlives the shutdown timeout, and logs why', async () => {
      const { code, elapsedMs, output } = await runSlowWorker(1, 500);
      expect(code).toBe(1);
      expect(elapsedMs).toBeGreaterThanOrEqual(450);
      expect(output).toMatch(
        /: INFO\/MainProcess\] Warm shutdown: waiting for 1 running task \(timeout 500 ms\)\n/,
      );
      expect(output).toMatch(
        /: WARNING\/MainProcess\] Stopped \(exit code 1\): 1 running task aborted past the shutdown timeout, 1 requeued\n$/,
      );
    });

    it('exits 2 before the shutdown timeout when a second signal forces the stop, and logs it', async () => {
      // The timeout is far away, so only the second signal can end the worker this early.
      const { code, elapsedMs, output } = await runSlowWorker(2, 20_000);
      expect(code).toBe(2);
      expect(elapsedMs).toBeLessThan(10_000);
      expect(output).toMatch(/Warm shutdown: waiting for 1 running task \(timeout 20000 ms\)\n/);
      expect(output).toMatch(
        /: WARNING\/MainProcess\] Cold shutdown: aborting 1 running task at once\n/,
      );
      // Once, with what the forced stop did.
      expect(output.match(/Stopped/g)).toHaveLength(1);
      expect(output).toMatch(
        /: WARNING\/MainProcess\] Stopped \(exit code 2\): 1 running task aborted by a forced stop, 1 requeued\n$/,
      );
    });

    it('with two workers in one process, SIGTERM exits once both stopped, not when the idle one did', async () => {
      const child = spawn(process.execPath, [fixture('two-workers.js')], { cwd: root });
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

    it('keeps a worker on the in-memory broker running until SIGTERM (it used to exit at once)', async () => {
      const child = spawn(process.execPath, [bin, 'worker', '--app', fixture('idle-app.js')], {
        cwd: root,
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await waitFor(() => output.includes(' ready.'), 'the worker to be ready');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).toContain('got SIGTERM');
    });

    it('exits 64 with a hint to compile when --app names a missing module or a .ts file', async () => {
      const missing = await conveyor(['dlq', 'list', 'q', '--app', 'no/such/app.js']);
      expect(missing.code).toBe(64);
      expect(missing.stderr).toMatch(
        /^conveyor: --app no\/such\/app\.js: no such module .*compile/,
      );
      expect(missing.stderr).not.toMatch(/\n\s+at /);
      const dir = mkdtempSync(join(tmpdir(), 'conveyor-cli-'));
      try {
        const source = join(dir, 'app.ts');
        writeFileSync(source, 'export const app: unknown = undefined;\n');
        const typescript = await conveyor(['worker', '--app', source]);
        expect(typescript.code).toBe(64);
        expect(typescript.stderr).toMatch(/cannot load this file type; compile the app first/);
        expect(typescript.stderr).not.toMatch(/\n\s+at /);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('exits 64 with a clear message when the module exports no app', async () => {
      const run = await conveyor(['worker', '--app', fixture('no-app.js')]);
      expect(run.code).toBe(64);
      expect(run.stderr).toContain(
        'no-app.js exports no Conveyor app (export it as `app` or as the default export)',
      );
    });
  });
});
