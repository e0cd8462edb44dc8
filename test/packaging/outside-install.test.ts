/**
 * Conveyor as a user outside this repository gets it: every package packed (which builds it),
 * the tarballs installed into a fresh project in the temporary directory, the README's
 * package.json, tsconfig, app and web node built there with its build script, tasks run on the
 * in-memory default and on RabbitMQ + Redis, and the worker started with the README's command
 * through the installed bin.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { waitFor } from '@conveyor/core/testing';
import { rabbitmqctl } from '../support/rabbitmq';
import { AMQP_URL, REDIS_URL } from '../support/services';

const run = promisify(execFile);
const root = join(__dirname, '../..');
const PACKAGES = ['core', 'amqp-transport', 'result-redis', 'result-postgres'];

/** What `npm pack --json` reports of one tarball. */
interface PackReport {
  name: string;
  filename: string;
  size: number;
  entryCount: number;
  files: Array<{ path: string; size: number }>;
}

/** The code block under `<!-- readme-<kind>: <name> -->` in the README. */
function readmeBlock(kind: 'file' | 'command', name: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const marker = `<!-- readme-${kind}: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error(`no code block after ${marker}`);
  return block[1]!;
}

/** A process whose output is kept, and whose exit can be awaited. */
function start(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env } });
  const proc = { child, output: '', exited: new Promise<number | null>(() => undefined) };
  child.stdout.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (proc.output += chunk.toString()));
  proc.exited = new Promise((resolve) => child.on('close', resolve));
  return proc;
}

const versionOf = (pkg: string): string =>
  (
    JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

describe('installed from the packed tarballs, outside the repository', () => {
  const work = mkdtempSync(join(tmpdir(), 'conveyor-outside-'));
  const project = join(work, 'project');
  let reports: PackReport[] = [];

  beforeAll(async () => {
    const packed = await run(
      'npm',
      [
        'pack',
        '--json',
        '--pack-destination',
        work,
        ...PACKAGES.flatMap((p) => ['--workspace', `packages/${p}`]),
      ],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
    );
    reports = JSON.parse(packed.stdout) as PackReport[];
    for (const r of reports) {
      const files = r.files.map((f) => `  ${f.path} (${f.size} B)`).join('\n');
      console.log(`${r.filename}: ${r.size} B, ${r.entryCount} files\n${files}`);
    }

    mkdirSync(join(project, 'src'), { recursive: true });
    for (const file of ['package.json', 'tsconfig.json', 'src/app.ts', 'src/web.ts']) {
      writeFileSync(join(project, file), readmeBlock('file', file));
    }
    for (const file of ['attendee-repository.ts', 'load.ts', 'memory.ts', 'unreachable.ts']) {
      copyFileSync(join(__dirname, 'project', file), join(project, 'src', file));
    }
    // As the README says, with the tarballs in place of the registry's packages. The npm cache
    // (--prefer-offline) serves the third-party packages after the first run.
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        ...reports.map((r) => join(work, r.filename)),
        'reflect-metadata',
        `typescript@${versionOf('typescript')}`,
        `@types/node@${versionOf('@types/node')}`,
      ],
      { cwd: project },
    );
    // The README's build script: a CommonJS package, so its web node has no top-level await.
    await run('npm', ['run', 'build'], { cwd: project });

    // The same tsconfig in an ES module package beside it (sharing its node_modules).
    const esm = join(project, 'esm');
    mkdirSync(join(esm, 'src'), { recursive: true });
    writeFileSync(join(esm, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
    writeFileSync(join(esm, 'tsconfig.json'), readmeBlock('file', 'tsconfig.json'));
    for (const file of ['esm/worker-app.ts', 'esm/greeting.ts', 'memory.ts']) {
      copyFileSync(join(__dirname, 'project', file), join(esm, 'src', basename(file)));
    }
    await run(join(project, 'node_modules/.bin/tsc'), ['-p', esm]);
  }, 240_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('each tarball holds its README, LICENSE and compiled code, and no sources or maps', () => {
    expect(reports.map((r) => r.name).sort()).toEqual(PACKAGES.map((p) => `@conveyor/${p}`).sort());
    for (const r of reports) {
      const paths = r.files.map((f) => f.path);
      expect(paths).toEqual(
        expect.arrayContaining([
          'package.json',
          'README.md',
          'LICENSE',
          'dist/index.js',
          'dist/index.d.ts',
        ]),
      );
      expect(paths.filter((p) => /\.map$|\.tsbuildinfo$|^src\/|\.test\./.test(p))).toEqual([]);
    }
    const core = reports.find((r) => r.name === '@conveyor/core')!;
    expect(core.files.map((f) => f.path)).toEqual(
      expect.arrayContaining(['bin/conveyor.js', 'dist/cli/main.js', 'dist/testing/index.js']),
    );
  });

  it('runs tasks on the in-memory default, arguments rebuilt as classes, and exits once closed', async () => {
    const memory = start(process.execPath, ['dist/memory.js'], project, {});
    expect(await memory.exited).toBe(0);
    expect(memory.output).toContain('add(4, 5) = 9');
    expect(memory.output).toContain('arguments rebuilt as Point and Date: true');
  });

  it('runs an ES module app: tasks in memory, and its worker with the installed bin', async () => {
    const memory = start(process.execPath, ['esm/dist/memory.js'], project, {});
    expect(await memory.exited).toBe(0);
    expect(memory.output).toContain('arguments rebuilt as Point and Date: true');
    const bin = join(project, 'node_modules/.bin/conveyor');
    const worker = start(bin, ['worker', '--app', 'esm/dist/worker-app.js'], project, {});
    expect(await worker.exited).toBe(0);
    expect(worker.output).toContain('hello from an ES module, ESM');
  });

  it('exits 69 when the broker is unreachable at startup', async () => {
    const bin = join(project, 'node_modules/.bin/conveyor');
    const worker = start(bin, ['worker', '--app', 'dist/unreachable.js'], project, {
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:1',
    });
    expect(await worker.exited).toBe(69);
    expect(worker.output).toContain('unreachable at startup');
  });

  describe('on RabbitMQ and Redis', () => {
    const vhost = `conveyor-outside-${randomUUID()}`;
    const env = {
      AMQP_URL: `${AMQP_URL}/${encodeURIComponent(vhost)}`,
      REDIS_URL,
    };
    const running: ChildProcess[] = [];
    const workerOutputs: Array<{ output: string }> = [];
    let ids: string[] = [];

    beforeAll(async () => {
      // A vhost of its own: the README's app uses the global queue names celery and attendees.
      await rabbitmqctl('add_vhost', vhost);
      await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    }, 60_000);

    afterAll(async () => {
      for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
      await rabbitmqctl('delete_vhost', vhost);
      // The load's ids, and those of the README's web node, which prints none: the workers log them.
      const received = workerOutputs.flatMap(({ output }) =>
        [...output.matchAll(/ Task \S+\[([0-9a-f-]{36})\] received/g)].map((m) => m[1]!),
      );
      const keys = [...new Set([...ids, ...received])].map((id) => `celery-task-meta-${id}`);
      const redis = new Redis(REDIS_URL);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    }, 60_000);

    /** The README's worker command, run as written in the project. */
    const readmeWorker = () => {
      const [command, ...args] = readmeBlock('command', 'worker').trim().split(/\s+/);
      const worker = start(join(project, command!), args, project, env);
      running.push(worker.child);
      workerOutputs.push(worker);
      return worker;
    };

    it("runs the README's app with the README's command; SIGTERM mid-load exits 0 and loses nothing; the README's web node gets its results", async () => {
      const first = readmeWorker();
      await waitFor(() => / ready\.$/m.test(first.output), 'the first worker to be ready', 30_000);
      expect(first.output).toMatch(/transport: +amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672/);
      expect(first.output).toMatch(/\. attendees\.updateAttendees +\(attendees\)/);

      const web = start(process.execPath, ['dist/load.js', '30'], project, env);
      running.push(web.child);
      await waitFor(() => web.output.includes('{"sent"'), 'the web node to send its tasks', 30_000);
      ids = (
        JSON.parse(web.output.split('\n').find((l) => l.startsWith('{"sent"'))!) as {
          sent: string[];
        }
      ).sent;
      await waitFor(() => first.output.includes('succeeded in'), 'a first task to succeed', 30_000);
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);

      // What the first worker had not finished is back in the queues: a second worker runs it.
      const second = readmeWorker();
      expect(await web.exited).toBe(0);
      const results = JSON.parse(web.output.trim().split('\n').pop()!) as {
        sums: number[];
        reports: Array<[boolean, string, number]>;
      };
      expect(results.sums).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(results.reports).toEqual(Array.from({ length: 30 }, (_, i) => [true, `evt-${i}`, 3]));

      const ran = (output: string): number => output.split('succeeded in').length - 1;
      console.log(
        `of 60 tasks, the first worker ran ${ran(first.output)}, the second ${ran(second.output)}`,
      );

      // The README's web node as written: its results, then it closes the app and exits.
      const readmeWeb = start(process.execPath, ['dist/web.js'], project, env);
      running.push(readmeWeb.child);
      expect(await readmeWeb.exited).toBe(0);
      expect(readmeWeb.output).toBe('9\nevt-42 3\n');
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);

      const queues = await rabbitmqctl('list_queues', '-p', vhost, 'name', 'messages');
      expect(queues.split('\n').filter((line) => /\t[1-9]/.test(line))).toEqual([]);
    }, 90_000);
  });
});
