import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { Conveyor, type EventMonitor } from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { buildPackages, ROOT } from '../support/faults/build';
import { createVhost, type TestVhost } from '../support/rabbitmq';
import { PYTHON, PythonEventMonitor } from './python-celery';

/**
 * Conveyor workers' events against Celery's own EventReceiver, and Conveyor's ClusterState
 * against workers that die or stop. The workers run in processes of their own (built packages),
 * one of them in UTC+5:30 while the machine and Celery run in UTC, so a wrong utcoffset sign
 * would move its timestamps by hours. A vhost of this file keeps `celeryev` to itself.
 */
const FIXTURE = join(__dirname, 'fixtures', 'events-worker.js');
const queue = `ev-${randomUUID()}`;

class WorkerChild {
  output = '';
  readonly hostname = `ts-ev-${randomUUID()}@${hostname()}`;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(url: string, tz: string) {
    this.child = spawn(process.execPath, [FIXTURE], {
      cwd: ROOT,
      env: {
        ...process.env,
        TZ: tz,
        CONVEYOR_AMQP_URL: url,
        CONVEYOR_QUEUE: queue,
        CONVEYOR_HOSTNAME: this.hostname,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  ready(): Promise<void> {
    return waitFor(() => /READY \d+/.test(this.output), `worker ready:\n${this.output}`, 30_000);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

let vhost: TestVhost;
let python: PythonEventMonitor;
let app: Conveyor;
let monitor: EventMonitor;
const children: WorkerChild[] = [];

function startWorker(tz: string): Promise<WorkerChild> {
  const child = new WorkerChild(vhost.url, tz);
  children.push(child);
  return child.ready().then(() => child);
}

beforeAll(async () => {
  await buildPackages();
  vhost = await createVhost('events');
  python = new PythonEventMonitor(vhost.url);
  app = new Conveyor({ broker: new AmqpTransport({ url: vhost.url }), backend: null });
  await Promise.all([python.start(), app.transport.declareQueue({ name: queue })]);
  monitor = await app.events.monitor();
}, 120_000);

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  python?.stop();
  await monitor?.stop();
  await app?.close();
  await vhost?.remove();
}, 60_000);

describe('Celery events from Conveyor workers', () => {
  let worker: WorkerChild;

  it("reach Celery's EventReceiver: received, started, succeeded, a failure with its exception, an expired task's revoke alone, and heartbeats, from a worker in UTC+5:30", async () => {
    worker = await startWorker('Asia/Kolkata');
    const ok = await app.send('ev.add', [2, 3], { queue });
    const failed = await app.send('ev.fail', ['boom'], { queue });
    const expired = await app.send('ev.add', [1, 1], {
      queue,
      expires: new Date(Date.now() - 1_000),
    });
    const of = (id: string) => python.events.filter((e) => e.uuid === id).map((e) => e.type);
    await waitFor(
      () =>
        of(ok.id).includes('task-succeeded') &&
        of(failed.id).includes('task-failed') &&
        of(expired.id).includes('task-revoked') &&
        python.events.filter((e) => e.type === 'worker-heartbeat' && e.hostname === worker.hostname)
          .length >= 2,
      'the task events and two heartbeats',
      20_000,
    );
    expect(of(ok.id)).toEqual(['task-received', 'task-started', 'task-succeeded']);
    expect(of(failed.id)).toEqual(['task-received', 'task-started', 'task-failed']);
    // As a Celery worker reports a task that arrives expired: task-revoked, no task-received.
    expect(of(expired.id)).toEqual(['task-revoked']);
    expect(python.events.find((e) => e.uuid === expired.id)).toMatchObject({
      expired: true,
      terminated: false,
    });
    const succeeded = python.events.find((e) => e.uuid === ok.id && e.type === 'task-succeeded')!;
    expect(succeeded).toMatchObject({ hostname: worker.hostname, result: '5' });
    expect(succeeded.runtime).toEqual(expect.any(Number));
    const failure = python.events.find((e) => e.uuid === failed.id && e.type === 'task-failed')!;
    expect(failure.exception).toBe("RangeError('boom')");
    expect(failure.traceback).toContain('RangeError: boom');
    const received = python.events.find((e) => e.uuid === ok.id && e.type === 'task-received')!;
    expect(received).toMatchObject({ name: 'ev.add', args: '(2, 3)', kwargs: '{}', retries: 0 });

    const fromWorker = python.events.filter((e) => e.hostname === worker.hostname);
    expect(fromWorker.map((e) => e.type)).toContain('worker-online');
    // What a Python worker in that zone sends: hours west of UTC, floored (time.timezone // 3600).
    const { stdout } = await promisify(execFile)(
      PYTHON,
      ['-c', 'from celery.utils.time import utcoffset; print(utcoffset())'],
      { env: { ...process.env, TZ: 'Asia/Kolkata' } },
    );
    const celeryOffset = Number(stdout.trim());
    expect(celeryOffset).toBe(-6);
    for (const event of fromWorker) {
      expect(event.utcoffset).toBe(celeryOffset);
      // Celery's receiver (here in UTC) moves a timestamp by (utcoffset - 0) hours, a Python
      // worker's and ours alike: +6 h from this zone. With the sign wrong it would be -6 h.
      const moved = (event.timestamp as number) - (event.local_received as number);
      expect(Math.abs(moved + celeryOffset * 3600)).toBeLessThan(60);
    }
    const heartbeat = fromWorker.find((e) => e.type === 'worker-heartbeat')!;
    expect(heartbeat).toMatchObject({
      freq: 2,
      sw_ident: 'conveyor',
      processed: expect.any(Number),
    });
    expect(heartbeat.loadavg).toHaveLength(3);

    // The same events, in Conveyor's ClusterState.
    await waitFor(() => monitor.state.tasks.get(failed.id)?.state === 'FAILURE', 'cluster state');
    expect(monitor.state.tasks.get(ok.id)).toMatchObject({ state: 'SUCCESS', result: '5' });
    expect(monitor.state.isAlive(worker.hostname)).toBe(true);
  });

  it('a worker killed with SIGKILL is offline in the cluster state once its heartbeat expires', async () => {
    expect(monitor.state.isAlive(worker.hostname)).toBe(true);
    worker.kill('SIGKILL');
    await worker.exited;
    const state = monitor.state;
    await waitFor(() => !state.isAlive(worker.hostname), 'the killed worker to go offline', 15_000);
    const record = state.workers.get(worker.hostname)!;
    // Gone by heartbeat expiry (2 s × 2), not by a goodbye it never sent.
    expect(record.offline).toBe(false);
    expect(state.heartbeatExpires(record)).toBeLessThanOrEqual(Date.now() / 1000);
  });

  it('a gracefully stopped worker sends worker-offline at once', async () => {
    const stopping = await startWorker('UTC');
    await waitFor(() => monitor.state.isAlive(stopping.hostname), 'the second worker online');
    stopping.kill('SIGTERM');
    await stopping.exited;
    await waitFor(
      () => monitor.state.workers.get(stopping.hostname)?.offline === true,
      'worker-offline in the cluster state',
    );
    expect(monitor.state.isAlive(stopping.hostname)).toBe(false);
    await waitFor(
      () =>
        python.events.some((e) => e.type === 'worker-offline' && e.hostname === stopping.hostname),
      "worker-offline at Celery's receiver",
    );
  });
});
