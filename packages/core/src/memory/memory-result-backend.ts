import type { ResultBackend } from '../backend/result-backend';
import { parseCeleryJson, stringifyCeleryJson } from '../protocol/celery-json';
import { isReadyState, type GroupMeta, type ResultMeta } from '../protocol/result-meta';
import { afterDelay } from '../timing/long-timeout';

/** Options of {@link MemoryResultBackend}. */
export interface MemoryResultBackendOptions {
  /**
   * Stored results are dropped this long after they were written; 0 keeps them.
   * @defaultValue 86_400_000 (one day, as Celery's `result_expires`)
   */
  resultExpiresMs?: number;
  /** Share the store of another memory backend (several "connections" to one store). */
  sharedWith?: MemoryResultBackend;
}

interface Entry<T> {
  value: string;
  expiresAt: number;
  parsed?: T;
}

/** Shared state of memory backends that model connections to the same store. */
class MemoryResultStore {
  readonly results = new Map<string, Entry<ResultMeta>>();
  readonly groups = new Map<string, Entry<GroupMeta>>();
  readonly waiters = new Map<string, Set<(meta: ResultMeta) => void>>();
  readonly counters = new Map<string, { value: number; expiresAt: number }>();
  readonly leases = new Map<string, { holder: string; expiresAt: number }>();
}

/**
 * The in-memory result backend: Conveyor's default. Results are kept as JSON text, as a real
 * store keeps them, so what round-trips here round-trips in Redis or PostgreSQL.
 */
export class MemoryResultBackend implements ResultBackend {
  private readonly store_: MemoryResultStore;
  private readonly expiresMs: number;
  private readonly pending = new Set<() => void>();

  constructor(options: MemoryResultBackendOptions = {}) {
    this.store_ = options.sharedWith?.store_ ?? new MemoryResultStore();
    this.expiresMs = options.resultExpiresMs ?? 86_400_000;
  }

  async connect(): Promise<void> {}

  async store(meta: ResultMeta): Promise<void> {
    const current = this.read(this.store_.results, meta.task_id);
    if (current && isReadyState(current.status)) return;
    const value = stringifyCeleryJson(meta);
    this.store_.results.set(meta.task_id, { value, expiresAt: this.expiry() });
    if (isReadyState(meta.status)) {
      const waiters = this.store_.waiters.get(meta.task_id);
      if (waiters) {
        this.store_.waiters.delete(meta.task_id);
        for (const wake of waiters) wake(parseCeleryJson(value) as ResultMeta);
      }
    }
  }

  async get(taskId: string): Promise<ResultMeta | undefined> {
    return this.read(this.store_.results, taskId);
  }

  async getMany(taskIds: readonly string[]): Promise<Array<ResultMeta | undefined>> {
    return taskIds.map((id) => this.read(this.store_.results, id));
  }

  waitForReady(taskId: string, timeoutMs: number): Promise<ResultMeta | undefined> {
    const current = this.read(this.store_.results, taskId);
    if (current && isReadyState(current.status)) return Promise.resolve(current);
    return new Promise((resolve) => {
      let waiters = this.store_.waiters.get(taskId);
      if (!waiters) {
        waiters = new Set();
        this.store_.waiters.set(taskId, waiters);
      }
      const done = (meta: ResultMeta | undefined): void => {
        cancelTimer();
        waiters!.delete(wake);
        if (waiters!.size === 0 && this.store_.waiters.get(taskId) === waiters) {
          this.store_.waiters.delete(taskId);
        }
        this.pending.delete(abandon);
        resolve(meta);
      };
      const wake = (meta: ResultMeta): void => done(meta);
      const abandon = (): void => done(undefined);
      const cancelTimer = afterDelay(timeoutMs, abandon);
      waiters.add(wake);
      this.pending.add(abandon);
    });
  }

  async forget(taskId: string): Promise<void> {
    this.store_.results.delete(taskId);
  }

  async storeGroup(meta: GroupMeta): Promise<void> {
    this.store_.groups.set(meta.group_id, {
      value: stringifyCeleryJson(meta),
      expiresAt: this.expiry(),
    });
  }

  async getGroup(groupId: string): Promise<GroupMeta | undefined> {
    return this.read(this.store_.groups, groupId);
  }

  async forgetGroup(groupId: string): Promise<void> {
    this.store_.groups.delete(groupId);
  }

  /** Deletes expired results and groups (reads skip them anyway; this frees their memory). */
  async sweepExpired(): Promise<{ deleted: number }> {
    const now = Date.now();
    let deleted = 0;
    for (const map of [this.store_.results, this.store_.groups] as Array<
      Map<string, Entry<unknown>>
    >) {
      for (const [id, entry] of map) {
        if (entry.expiresAt <= now) {
          map.delete(id);
          deleted += 1;
        }
      }
    }
    return { deleted };
  }

  async increment(key: string, by: number, expiresInMs: number): Promise<number> {
    const now = Date.now();
    const current = this.store_.counters.get(key);
    const value = (current && current.expiresAt > now ? current.value : 0) + by;
    this.store_.counters.set(key, { value, expiresAt: now + expiresInMs });
    return value;
  }

  async forgetCounter(key: string): Promise<void> {
    this.store_.counters.delete(key);
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const current = this.store_.leases.get(name);
    if (current && current.expiresAt > now && current.holder !== holder) return false;
    this.store_.leases.set(name, { holder, expiresAt: now + ttlMs });
    return true;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    if (this.store_.leases.get(name)?.holder === holder) this.store_.leases.delete(name);
  }

  describe(): string {
    return 'memory (this process)';
  }

  async close(): Promise<void> {
    for (const abandon of [...this.pending]) abandon();
  }

  private expiry(): number {
    return this.expiresMs > 0 ? Date.now() + this.expiresMs : Number.POSITIVE_INFINITY;
  }

  private read<T>(map: Map<string, Entry<T>>, id: string): T | undefined {
    const entry = map.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      map.delete(id);
      return undefined;
    }
    return parseCeleryJson(entry.value) as T;
  }
}
