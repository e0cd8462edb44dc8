/** What the process's signal handler needs of a worker. */
export interface SignalledWorker {
  /** Stops gracefully; resolves with the exit code. */
  stop(): Promise<number>;
  /** Stops at once, requeueing what runs; resolves with the exit code. */
  force(): Promise<number>;
  /** Closes the worker's app (its broker and backend connections). */
  close(): Promise<unknown>;
}

const workers = new Set<SignalledWorker>();
let signals = 0;

/**
 * SIGTERM or SIGINT: every worker of the process that handles signals stops gracefully (a
 * second signal forces them), their apps close, and the process exits with the worst code
 * (0 all finished, 1 a timeout requeued tasks, 2 forced). One handler for all of them: with a
 * handler per worker, the first worker to stop exited the process while another still ran
 * tasks.
 */
function onSignal(): void {
  signals += 1;
  const stopping = [...workers];
  void Promise.all(stopping.map((w) => (signals === 1 ? w.stop() : w.force()))).then(
    async (codes) => {
      await Promise.all(stopping.map((w) => w.close().catch(() => undefined)));
      process.exit(Math.max(0, ...codes));
    },
  );
}

/** Lets the process's signals stop `worker`; returns the function that stops that. */
export function stopOnSignals(worker: SignalledWorker): () => void {
  if (workers.size === 0) {
    signals = 0;
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  workers.add(worker);
  return () => {
    if (!workers.delete(worker) || workers.size > 0) return;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
