import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  delayNamespace,
  listQueues,
  removeDelayNamespace,
  removeQueues,
  withRawChannel,
} from '../support/rabbitmq';
import { AMQP_URL } from '../support/services';

const root = join(__dirname, '../..');
const bin = join(root, 'packages/core/bin/conveyor.js');
const app = join(__dirname, 'fixtures/ops-app.js');
const queue = `ops-bin-${randomUUID()}`;
const namespace = delayNamespace();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the installed `conveyor` bin to its end, with no terminal: stdin is an empty pipe. */
function conveyor(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, AMQP_URL, OPS_QUEUE: queue, OPS_DELAY_NAMESPACE: namespace },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('the conveyor bin: operator commands from the built packages', () => {
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  }, 120_000);

  afterAll(async () => {
    await removeQueues([queue]);
    await removeDelayNamespace(namespace);
  });

  it('lists the operator commands in --help', async () => {
    const run = await conveyor(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['worker', 'queues', 'purge', 'call', 'result', 'revoke']) {
      expect(run.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
  });

  it('purge without -f refuses when there is no terminal (exit 64) and deletes nothing; with -f it purges and exits', async () => {
    const sent = await conveyor(['call', 'ops.anything', '-A', app, '-a', '[1]']);
    expect(sent.code).toBe(0);
    await conveyor(['call', 'ops.anything', '-A', app]);
    await withRawChannel(async (ch) => {
      ch.sendToQueue(queue, Buffer.from('third'), { persistent: true });
      await ch.checkQueue(queue);
    });
    expect((await listQueues()).get(queue)!.ready).toBe(3);

    const refused = await conveyor(['purge', '-A', app, '-Q', queue]);
    expect(refused.code).toBe(64);
    expect(refused.stderr).toMatch(/no terminal to ask on: pass -f/);
    expect((await listQueues()).get(queue)!.ready).toBe(3);

    const forced = await conveyor(['purge', '-A', app, '-Q', queue, '-f', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ purged: { [queue]: 3 } });
    expect((await listQueues()).get(queue)!.ready).toBe(0);
  });

  it('worker --metrics-port serves the Prometheus metrics of the worker it runs', async () => {
    const child = spawn(
      process.execPath,
      [
        bin,
        'worker',
        '-A',
        join(root, 'packages/core/test/cli/fixtures/idle-app.js'),
        '--metrics-port',
        '0',
      ],
      { cwd: root },
    );
    let output = '';
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no metrics port in:\n${output}`)), 10_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        const match = /Prometheus metrics at :(\d+)\/metrics/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
    });
    const exited = new Promise((resolve) => child.on('close', resolve));
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toContain('# TYPE conveyor_tasks_total counter');
    expect(text).toMatch(/^conveyor_tasks_active\{worker="conveyor-\d+@[^"]+"\} 0$/m);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('queues --json prints the counts and ends (its connections closed); a bad option exits 64', async () => {
    const run = await conveyor(['queues', '-A', app, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { queues: Array<Record<string, unknown>> };
    expect(report.queues).toEqual([
      expect.objectContaining({ name: queue, exists: true, ready: 0, consumers: 0, dead: 0 }),
    ]);
    const bad = await conveyor(['queues', '-A', app, '--bogus']);
    expect(bad.code).toBe(64);
  });
});
