/** How many revoked ids a worker remembers, and for how long (Celery's REVOKES_MAX / REVOKE_EXPIRES). */
export const REVOKED_MAX = 50_000;
export const REVOKED_TTL_MS = 3 * 3_600_000;

/**
 * The task ids a worker was told to revoke, bounded in size and age so a long-running worker
 * does not grow without end. Oldest entries go first.
 */
export class Revocations {
  private readonly ids = new Map<string, number>();

  constructor(
    private readonly max = REVOKED_MAX,
    private readonly ttlMs = REVOKED_TTL_MS,
  ) {}

  add(id: string, now = Date.now()): void {
    this.ids.delete(id);
    this.ids.set(id, now + this.ttlMs);
    while (this.ids.size > this.max) this.ids.delete(this.ids.keys().next().value!);
  }

  /** The ids remembered now, with when each was revoked (Unix seconds, as Celery shares them). */
  entries(now = Date.now()): Map<string, number> {
    const entries = new Map<string, number>();
    for (const [id, expiresAt] of this.ids) {
      if (expiresAt > now) entries.set(id, (expiresAt - this.ttlMs) / 1000);
    }
    return entries;
  }

  has(id: string, now = Date.now()): boolean {
    const expiresAt = this.ids.get(id);
    if (expiresAt === undefined) return false;
    if (expiresAt <= now) {
      this.ids.delete(id);
      return false;
    }
    return true;
  }
}
