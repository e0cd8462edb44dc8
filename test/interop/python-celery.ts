import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseCeleryJson, stringifyCeleryJson } from '@conveyor/core';
import { AMQP_URL, REDIS_URL } from '../support/services';

/** Debian's Celery belongs to the system Python, not the first python3 on PATH. */
export const PYTHON = process.env.CONVEYOR_TEST_PYTHON ?? '/usr/bin/python3';
const PYTHON_DIR = join(__dirname, 'python');

function pythonEnv(queue: string, amqpUrl = AMQP_URL): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AMQP_URL: amqpUrl,
    REDIS_URL,
    INTEROP_QUEUE: queue,
    PYTHONDONTWRITEBYTECODE: '1',
  };
}

/** A real Celery 5 worker process (`celery worker -P solo`) consuming `queue`. */
export class PythonCeleryWorker {
  private child?: ChildProcess;
  output = '';

  /** The node name it runs as (`-n`), for `destination`. */
  readonly hostname: string;

  constructor(
    readonly queue: string,
    private readonly options: {
      /** The broker (a test vhost). @defaultValue AMQP_URL */
      amqpUrl?: string;
      /** Replace `--without-heartbeat` and friends, e.g. `['-E']` for task events. */
      flags?: string[];
    } = {},
  ) {
    this.hostname = `py-${randomUUID()}@${hostname()}`;
  }

  /** Starts the worker and resolves once Celery logs that it is ready. */
  async start(timeoutMs = 30_000): Promise<void> {
    const child = spawn(
      PYTHON,
      [
        '-m',
        'celery',
        '-A',
        'interop_tasks',
        'worker',
        '-P',
        'solo',
        '-Q',
        this.queue,
        '-l',
        'info',
        '-n',
        this.hostname,
        ...(this.options.flags ?? ['--without-gossip', '--without-mingle', '--without-heartbeat']),
      ],
      { cwd: PYTHON_DIR, env: pythonEnv(this.queue, this.options.amqpUrl) },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Celery worker not ready in ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      );
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (/ ready\.$/m.test(this.output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`Celery worker exited with ${code}:\n${this.output}`));
      });
    });
  }

  /** Warm shutdown (SIGTERM), then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** What `producer.py` prints. */
export interface PythonProducerResult {
  ok: boolean;
  id: string;
  result?: unknown;
  state?: string;
  exc_type?: string;
  exc_module?: string;
  exc_message?: string;
  exc_args?: string[];
}

/** Sends a task with Python Celery's `app.send_task` (and waits for its result unless `wait: false`). */
export async function pythonSend(command: {
  /** The task to send; or, with `read`, none. */
  task?: string;
  /** Send nothing: wait for the result of this task id. */
  read?: string;
  queue: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  countdown?: number;
  eta_in?: number;
  timeout?: number;
  wait?: boolean;
}): Promise<PythonProducerResult> {
  // BigInt arguments go out, and big integers in results come back, exactly.
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['producer.py', stringifyCeleryJson(command)],
    { cwd: PYTHON_DIR, env: pythonEnv(command.queue), timeout: 60_000 },
  );
  const lines = stdout.trim().split('\n');
  return parseCeleryJson(lines[lines.length - 1]!) as PythonProducerResult;
}

/** Runs `canvas.py`: a workflow built in Python across Conveyor's and Celery's queues. */
export async function pythonCanvas(
  command:
    | {
        kind: 'chain' | 'chain_fail' | 'link' | 'link_error';
        ts_queue: string;
        py_queue: string;
        timeout?: number;
      }
    | { kind: 'group_restore'; group_id: string }
    | { kind: 'group_save'; group_id: string; members: string[] }
    | { kind: 'mark_failure'; task_id: string; exc: 'TimeLimitExceeded' | 'WorkerLostError' },
): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(PYTHON, ['canvas.py', JSON.stringify(command)], {
    cwd: PYTHON_DIR,
    env: pythonEnv('py_queue' in command ? command.py_queue : 'unused'),
    timeout: 60_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

/** Runs `capture_reference.py`: what this Python Celery puts on the wire and stores, as JSON. */
export async function captureCeleryReference(outPath: string): Promise<void> {
  await promisify(execFile)(PYTHON, ['capture_reference.py', outPath], {
    cwd: PYTHON_DIR,
    env: pythonEnv('unused'),
    timeout: 90_000,
  });
}

/** Runs Celery's own command line (`celery -A interop_tasks <args>`) and returns its stdout. */
export async function celeryCommand(
  args: string[],
  amqpUrl: string,
  timeoutMs = 60_000,
): Promise<string> {
  const { stdout } = await promisify(execFile)(
    PYTHON,
    ['-m', 'celery', '-A', 'interop_tasks', ...args],
    { cwd: PYTHON_DIR, env: pythonEnv('celery', amqpUrl), timeout: timeoutMs },
  );
  return stdout;
}

/**
 * Celery's own `EventReceiver` (`python/event_monitor.py`) in a child process: every event it
 * receives, as Celery hands it over (timestamp adjusted, local_received set), one JSON per line.
 */
export class PythonEventMonitor {
  readonly events: Array<Record<string, unknown>> = [];
  private child?: ChildProcess;
  private buffer = '';
  output = '';

  constructor(private readonly amqpUrl: string) {}

  async start(timeoutMs = 30_000): Promise<void> {
    const child = spawn(PYTHON, ['event_monitor.py'], {
      cwd: PYTHON_DIR,
      env: pythonEnv('celery', this.amqpUrl),
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`event monitor not ready in ${timeoutMs} ms:\n${this.output}`)),
        timeoutMs,
      );
      child.stdout!.on('data', (chunk: Buffer) => {
        this.buffer += chunk.toString();
        let newline: number;
        while ((newline = this.buffer.indexOf('\n')) >= 0) {
          const line = this.buffer.slice(0, newline);
          this.buffer = this.buffer.slice(newline + 1);
          if (line === 'READY') {
            clearTimeout(timer);
            resolve();
          } else if (line.startsWith('{')) {
            this.events.push(JSON.parse(line) as Record<string, unknown>);
          }
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`event monitor exited with ${code}:\n${this.output}`));
      });
    });
  }

  stop(): void {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
