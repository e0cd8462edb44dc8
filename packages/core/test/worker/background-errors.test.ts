import {
  ConnectionError,
  Conveyor,
  MemoryResultBackend,
  MemoryTransport,
  Task,
  TaskService,
} from '@conveyor/core';
import { BackgroundErrors } from '@conveyor/core/plugin';

@TaskService({ name: 'background' })
class Noop {
  @Task()
  noop(): void {}
}

/** A memory transport that reports background errors the way the plugin packages do. */
class ReportingTransport extends MemoryTransport {
  readonly errors = new BackgroundErrors('test', () => undefined);
  onBackgroundError(listener: (error: ConnectionError) => void): () => void {
    return this.errors.listen(listener);
  }
}

/** The same for a result backend. */
class ReportingBackend extends MemoryResultBackend {
  readonly errors = new BackgroundErrors('test', () => undefined);
  onBackgroundError(listener: (error: ConnectionError) => void): () => void {
    return this.errors.listen(listener);
  }
}

describe("the worker and its transport's and backend's background errors", () => {
  it('reports them as worker-error while it runs, and stops listening once stopped', async () => {
    const transport = new ReportingTransport();
    const backend = new ReportingBackend();
    const app = new Conveyor({ broker: transport, backend, tasks: [Noop] });
    const worker = app.worker({ handleSignals: false });
    const seen: string[] = [];
    worker.on('worker-error', (error) => seen.push(error.message));
    try {
      transport.errors.report(new ConnectionError('before start'));
      await worker.start();
      transport.errors.report(new ConnectionError('broker connection lost; reconnecting'));
      backend.errors.report(new ConnectionError('poll for results failed'));
      await worker.stop();
      transport.errors.report(new ConnectionError('after stop'));
      expect(seen).toEqual(['broker connection lost; reconnecting', 'poll for results failed']);
    } finally {
      await app.close();
    }
  });
});
