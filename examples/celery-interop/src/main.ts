import 'reflect-metadata';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Conveyor, Task } from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { RedisResultBackend } from '@conveyor/result-redis';

/** A Conveyor task that Python calls by name. */
@Task({ name: 'math.multiply' })
class Multiply {
  run(a: number, b: number): number {
    return a * b;
  }
}

const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Debian's Celery belongs to the system Python.
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const pythonDir = join(__dirname, '../python');
const env = { ...process.env, AMQP_URL, REDIS_URL };

/**
 * Both directions against a real Python Celery: Conveyor sends `tasks.add` to a Celery worker,
 * and a Python producer calls the Conveyor task `math.multiply`. No Celery-specific settings:
 * Conveyor's defaults are Celery's.
 */
async function main(): Promise<void> {
  const app = new Conveyor({
    broker: new AmqpTransport({ url: AMQP_URL }),
    backend: new RedisResultBackend({ url: REDIS_URL }),
    tasks: [Multiply],
    defaultQueue: 'celery-example-js',
  });
  const worker = app.worker({ handleSignals: false });
  await worker.start();

  const celery = spawn(
    PYTHON,
    ['-m', 'celery', '-A', 'tasks', 'worker', '-P', 'solo', '-l', 'info'],
    { cwd: pythonDir, env },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const onData = (chunk: Buffer): void => {
        log += chunk.toString();
        if (/ ready\.$/m.test(log)) resolve();
      };
      celery.stdout.on('data', onData);
      celery.stderr.on('data', onData);
      celery.once('exit', (code) =>
        reject(new Error(`the Celery worker exited (${code}):\n${log}`)),
      );
    });

    const sum = await app.send<number>('tasks.add', [4, 5], { queue: 'celery-example-py' });
    console.log(
      `conveyor: tasks.add(4, 5) on Python Celery = ${await sum.get({ timeoutMs: 10_000 })}`,
    );

    const { stdout } = await promisify(execFile)(PYTHON, ['tasks.py'], { cwd: pythonDir, env });
    process.stdout.write(stdout);
  } finally {
    celery.kill('SIGTERM');
    await worker.stop();
    await app.close();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
