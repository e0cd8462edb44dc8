import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { CHILD_CONFIG_ENV, type ChildConfig, type ChildMessage, type ParentMessage } from './ipc';

/** Extra node flags for forked children (e.g. `--cpu-prof`), set by `run.ts --profile`. */
export const childExecArgv: string[] = [];

const live = new Set<Child>();

interface Waiter {
  type: ChildMessage['type'];
  resolve: (message: ChildMessage) => void;
  reject: (error: Error) => void;
}

/** A forked bench child (a Conveyor worker or the raw consumer) and its IPC. */
export class Child {
  private readonly process: ChildProcess;
  private readonly waiters: Waiter[] = [];
  private failure?: Error;
  private exited = false;

  private constructor(
    script: string,
    config: ChildConfig,
    readonly label: string,
  ) {
    this.process = fork(join(__dirname, script), [], {
      env: { ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config) },
      execArgv: [...childExecArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    live.add(this);
    this.process.on('message', (message: ChildMessage) => {
      if (message.type === 'error') {
        this.fail(new Error(`${label} failed: ${message.message}`));
        return;
      }
      const index = this.waiters.findIndex((w) => w.type === message.type);
      if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(message);
    });
    this.process.on('exit', (code, signal) => {
      this.exited = true;
      live.delete(this);
      this.fail(new Error(`${label} exited (code ${code}, signal ${signal})`));
    });
  }

  /** Forks `script` (a compiled file beside this one) and waits for its `ready`. */
  static async start(
    script: string,
    config: ChildConfig,
    label: string,
    timeoutMs = 30_000,
  ): Promise<Child> {
    const child = new Child(script, config, label);
    try {
      await child.next('ready', timeoutMs);
    } catch (error) {
      child.kill();
      throw error;
    }
    return child;
  }

  /** Waits for the next message of `type` from the child. */
  next<T extends ChildMessage['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<ChildMessage, { type: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        type,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message as Extract<ChildMessage, { type: T }>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`${this.label}: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  send(message: ParentMessage): void {
    if (this.failure) throw this.failure;
    this.process.send(message);
  }

  /** Sends `message` and waits for the answer of type `type`. */
  async request<T extends ChildMessage['type']>(
    message: ParentMessage,
    type: T,
    timeoutMs = 30_000,
  ): Promise<Extract<ChildMessage, { type: T }>> {
    const answer = this.next(type, timeoutMs);
    this.send(message);
    return answer;
  }

  /** Starts consuming. */
  async startConsuming(): Promise<void> {
    await this.request({ type: 'start' }, 'started');
  }

  async stats(): Promise<Extract<ChildMessage, { type: 'stats' }>> {
    return this.request({ type: 'stats' }, 'stats', 10_000);
  }

  /** Asks the child to stop cleanly; kills it if it has not exited within `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    try {
      this.send({ type: 'stop' });
    } catch {
      // It failed already: killed below.
    }
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (!this.exited) this.process.kill('SIGKILL');
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

/** Stops every child still running (cleanly, then by force). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => child.stop(5_000)));
}

/** Kills every child still running, at once (process exit path). */
export function killAllChildren(): void {
  for (const child of live) child.kill();
}
