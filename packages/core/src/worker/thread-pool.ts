import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import type { ThreadOutcome, ThreadReply, ThreadRunRequest } from './thread-protocol';

/** A run handed to a thread. */
export interface ThreadRun {
  /** Settles with the outcome, or with `terminated` once the thread was terminated. */
  readonly outcome: Promise<ThreadOutcome | 'terminated'>;
  /** Fires the task's AbortSignal in the thread. */
  abort(reason: Error): void;
  /** Terminates the thread; the run ends as `terminated`. */
  terminate(): void;
}

interface PooledThread {
  thread: Thread;
  ready: Promise<void>;
  /** Set when the thread exited, whatever the reason: it must never be handed a run again. */
  dead: boolean;
}

/** What a run ends as when its thread dies without being asked to (Celery's WorkerLostError). */
function threadLost(code: number): ThreadOutcome {
  return {
    ok: false,
    error: {
      exc_type: 'WorkerLostError',
      exc_message: [`the task thread exited unexpectedly (exit code ${code})`],
      exc_module: 'billiard.exceptions',
    },
    traceback: null,
  };
}

/**
 * Threads compiled from `thread-entry.ts`. Running from TypeScript sources (tests), the compiled
 * entry of the built package is used, since a thread cannot load TypeScript.
 */
function entryPath(): string {
  const sibling = join(__dirname, 'thread-entry.js');
  return existsSync(sibling) ? sibling : join(__dirname, '../../dist/worker/thread-entry.js');
}

/** Worker threads that run tasks with `isolation: 'thread'`, one task per thread at a time. */
export class ThreadPool {
  private readonly idle: PooledThread[] = [];
  private readonly busy = new Set<PooledThread>();

  constructor(private readonly appModule: string) {}

  /** Runs `request` in an idle (or new) thread; `onProgress` hears the task's progress(). */
  run(request: ThreadRunRequest, onProgress?: (meta: unknown) => void): ThreadRun {
    let pooled = this.idle.pop();
    while (pooled?.dead) pooled = this.idle.pop();
    pooled ??= this.spawn();
    const thread = pooled.thread;
    this.busy.add(pooled);
    let finish!: (outcome: ThreadOutcome | 'terminated') => void;
    const outcome = new Promise<ThreadOutcome | 'terminated'>((resolve) => (finish = resolve));
    let settled = false;
    let terminating = false;
    const settle = (value: ThreadOutcome | 'terminated'): void => {
      if (settled) return;
      settled = true;
      thread.off('message', onMessage);
      thread.off('exit', onExit);
      this.busy.delete(pooled);
      if (value !== 'terminated' && !pooled.dead) this.idle.push(pooled);
      finish(value);
    };
    const onMessage = (reply: ThreadReply): void => {
      if (reply.type === 'done') settle(reply.outcome);
      else if (reply.type === 'progress') onProgress?.(reply.meta);
    };
    // Terminated on request, the run ends as such; a thread that died by itself lost its task.
    const onExit = (code: number): void => settle(terminating ? 'terminated' : threadLost(code));
    thread.on('message', onMessage);
    thread.on('exit', onExit);
    pooled.ready.then(
      () => {
        if (!settled) thread.postMessage(request);
      },
      (error: Error) => {
        settle({
          ok: false,
          error: { exc_type: 'Error', exc_message: [error.message], exc_module: null },
          traceback: null,
        });
        void thread.terminate();
      },
    );
    return {
      outcome,
      // Both levers act only while this run holds the thread: afterwards it may run another task.
      abort: (reason) =>
        void pooled.ready.then(() => {
          if (!settled) {
            thread.postMessage({
              type: 'abort',
              reason: { name: reason.name, message: reason.message },
            });
          }
        }),
      terminate: () => {
        if (settled) return;
        terminating = true;
        settle('terminated');
        void thread.terminate();
      },
    };
  }

  async close(): Promise<void> {
    const all = [...this.idle.splice(0), ...this.busy];
    this.busy.clear();
    await Promise.all(all.map((p) => p.thread.terminate()));
  }

  private spawn(): PooledThread {
    const thread = new Thread(entryPath(), { workerData: { appModule: this.appModule } });
    const ready = new Promise<void>((resolve, reject) => {
      const onReady = (reply: ThreadReply): void => {
        if (reply.type === 'ready') resolve();
        else if (reply.type === 'loadError')
          reject(new Error(`task thread could not load the app: ${reply.message}`));
        else return;
        thread.off('message', onReady);
      };
      thread.on('message', onReady);
      thread.once('error', reject);
    });
    // A thread that dies ends its run through 'exit'; its 'error' must not crash the worker.
    thread.on('error', () => undefined);
    ready.catch(() => undefined);
    // Idle threads must not keep a finished worker process alive.
    thread.unref();
    const pooled: PooledThread = { thread, ready, dead: false };
    thread.once('exit', () => {
      pooled.dead = true;
      const index = this.idle.indexOf(pooled);
      if (index >= 0) this.idle.splice(index, 1);
    });
    return pooled;
  }
}
