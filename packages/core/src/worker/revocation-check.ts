import type { ResultBackend } from '../backend/result-backend';

/**
 * Asks the result backend whether tasks were revoked before the worker heard of it, batching the
 * tasks that start in the same turn of the event loop into one read (`getMany`), so the check
 * costs one round trip per batch instead of one per task.
 */
export class RevocationCheck {
  private batch: Array<{ id: string; resolve: (revoked: boolean) => void }> = [];

  constructor(
    private readonly backend: ResultBackend,
    private readonly onError: (error: Error) => void,
  ) {}

  /** True when the task's stored state is REVOKED. A store that cannot be read answers false. */
  isRevoked(taskId: string): Promise<boolean> {
    return new Promise((resolve) => {
      this.batch.push({ id: taskId, resolve });
      if (this.batch.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    const ids = batch.map((entry) => entry.id);
    try {
      const metas = this.backend.getMany
        ? await this.backend.getMany(ids)
        : await Promise.all(ids.map((id) => this.backend.get(id)));
      batch.forEach((entry, i) => entry.resolve(metas[i]?.status === 'REVOKED'));
    } catch (error) {
      // The store is down: run the tasks rather than stall; the revoke broadcast still applies.
      this.onError(error as Error);
      for (const entry of batch) entry.resolve(false);
    }
  }
}
