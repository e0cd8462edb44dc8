import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './build';

const RUNNER = join(__dirname, '../../faults/fixtures/run-worker.js');

/** How a worker process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<WorkerProcess>();
const crews = new Set<WorkerCrew>();

/**
 * A worker of `fixtures/fault-app.js` in a child process (`fixtures/run-worker.js`), on the built
 * packages, configured by environment variables. Its output is kept for failure messages.
 */
export class WorkerProcess {
  /** stdout and stderr, interleaved. */
  output = '';
  readonly exited: Promise<Exit>;
  exit?: Exit;
  private readonly child: ChildProcess;

  private constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, [RUNNER], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    this.child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      }),
    );
  }

  /** Starts a worker and resolves once it consumes (it printed `READY`). */
  static async start(env: Record<string, string>, timeoutMs = 20_000): Promise<WorkerProcess> {
    const worker = new WorkerProcess(env);
    await worker.waitForOutput(/READY \d+/, timeoutMs);
    return worker;
  }

  /** Starts a worker without waiting for it to consume. */
  static launch(env: Record<string, string>): WorkerProcess {
    return new WorkerProcess(env);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Its pid, whether it still runs and its last output, for a failure's diagnosis. */
  report(): string {
    return `worker ${this.pid} alive=${this.alive}, last output:\n${this.output.slice(-4_000)}`;
  }

  /** Resolves once the output matches `pattern`; rejects if the process exits first or in time. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          finish(
            new Error(`worker ${this.pid}: no ${pattern} within ${timeoutMs} ms:\n${this.output}`),
          ),
        timeoutMs,
      );
      const check = (): void => {
        if (pattern.test(this.output)) finish();
      };
      const finish = (error?: Error): void => {
        clearTimeout(timer);
        this.child.stdout!.off('data', check);
        this.child.stderr!.off('data', check);
        if (error) reject(error);
        else resolve();
      };
      this.child.stdout!.on('data', check);
      this.child.stderr!.on('data', check);
      void this.exited.then((exit) =>
        finish(
          new Error(
            `worker ${this.pid} exited (${JSON.stringify(exit)}) before ${pattern}:\n${this.output}`,
          ),
        ),
      );
      check();
    });
  }

  /** Sends `signal` (SIGKILL by default) if the process still runs. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.child.kill(signal);
  }

  /** SIGKILL, then waits for the exit. */
  async killNow(): Promise<Exit> {
    this.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM (the worker's graceful stop), then waits for the exit. */
  async terminate(): Promise<Exit> {
    this.kill('SIGTERM');
    return this.exited;
  }
}

/**
 * SIGKILLs every worker process these helpers started that is still running, after stopping
 * every {@link WorkerCrew} (which would start new ones).
 */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...crews].map((c) => c.stop()));
  await Promise.all([...live].map((w) => w.killNow()));
}

/**
 * Keeps `size` worker processes running, starting a new one whenever one exits, as a process
 * supervisor would: for tasks that kill their worker.
 */
export class WorkerCrew {
  /** Workers started after one ended. */
  restarts = 0;
  private stopped = false;
  private readonly current = new Set<WorkerProcess>();
  private readonly slots: Array<Promise<void>>;

  constructor(
    private readonly env: Record<string, string>,
    size: number,
  ) {
    this.slots = Array.from({ length: size }, () => this.keep());
    crews.add(this);
  }

  /** Stops restarting and kills the workers still running. */
  async stop(): Promise<void> {
    this.stopped = true;
    crews.delete(this);
    await Promise.all([...this.current].map((w) => w.killNow()));
    await Promise.all(this.slots);
  }

  private async keep(): Promise<void> {
    for (let first = true; !this.stopped; first = false) {
      if (!first) this.restarts += 1;
      // A poison message can end a worker before it even says READY: that is a start too.
      const worker = WorkerProcess.launch(this.env);
      this.current.add(worker);
      await worker.exited;
      this.current.delete(worker);
    }
  }
}
