/** Settled reconnect backoff settings (every field present). */
export interface ReconnectSettings {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  jitter: number;
}

/**
 * Pause before reconnect round `round` (1 = after the first failed round). Exponential, capped,
 * then spread by ± `jitter` so a fleet of clients cut at once does not return in lockstep.
 */
export function reconnectDelay(round: number, settings: ReconnectSettings): number {
  const base = Math.min(
    settings.maxDelayMs,
    settings.initialDelayMs * settings.multiplier ** Math.max(0, round - 1),
  );
  const spread = base * settings.jitter;
  const delay = base - spread + Math.random() * 2 * spread;
  return Math.max(0, Math.min(settings.maxDelayMs, Math.round(delay)));
}
