import { ConfigError } from '../errors';

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 };

/** Parses `'100/s'`, `'10/m'`, `'1000/h'` into the interval between runs, in ms. */
export function parseRateLimit(limit: string, label: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([smh])\s*$/.exec(limit);
  const count = match ? Number(match[1]) : Number.NaN;
  if (!match || !(count > 0)) {
    throw new ConfigError(
      `${label}: rateLimit must look like '100/s', '10/m' or '1000/h', got '${limit}'`,
    );
  }
  return UNIT_MS[match[2]!]! / count;
}

/**
 * Spaces out runs of rate-limited tasks, per task name, on one worker (Celery's rate limits are
 * per worker too). Each run reserves the next free slot, one interval after the previous one,
 * so a burst is spread evenly instead of running in a clump at every window start.
 */
export class RateLimiter {
  private readonly nextFree = new Map<string, number>();

  /** Reserves a slot for one run and returns how many ms to wait for it (0: run now). */
  reserve(name: string, intervalMs: number, now = Date.now()): number {
    const slot = Math.max(now, this.nextFree.get(name) ?? now);
    this.nextFree.set(name, slot + intervalMs);
    return slot - now;
  }
}
