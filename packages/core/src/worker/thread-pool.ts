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

  run(request: ThreadRunRequest): ThreadRun {
    const pooled = this.idle.pop() ?? this.spawn();
    this.busy.add(pooled);
    let finish!: (outcome: ThreadOutcome | 'terminated') => void;
    const outcome = new Promise<ThreadOutcome | 'terminated'>((resolve) => (finish = resolve));
    let settled = false;
    const settle = (value: ThreadOutcome | 'terminated'): void => {
      if (settled) return;
      settled = true;
      pooled.thread.off('message', onMessage);
      pooled.thread.off('exit', onExit);
      this.busy.delete(pooled);
      if (value !== 'terminated') this.idle.push(pooled);
      finish(value);
    };
    const onMessage = (reply: ThreadReply): void => {
      if (reply.type === 'done') settle(reply.outcome);
    };
    const onExit = (): void => settle('terminated');
    pooled.thread.on('message', onMessage);
    pooled.thread.on('exit', onExit);
    pooled.ready.then(
      () => pooled.thread.postMessage(request),
      (error: Error) => {
        settle({
          ok: false,
          error: { exc_type: 'Error', exc_message: [error.message], exc_module: null },
          traceback: null,
        });
        void pooled.thread.terminate();
      },
    );
    return {
      outcome,
      abort: (reason) =>
        void pooled.ready.then(() =>
          pooled.thread.postMessage({
            type: 'abort',
            reason: { name: reason.name, message: reason.message },
          }),
        ),
      terminate: () => {
        settle('terminated');
        void pooled.thread.terminate();
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
    return { thread, ready };
  }
}
