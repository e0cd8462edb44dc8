import { loadavg, type } from 'node:os';
import { coreVersion } from '../cli/version';
import { DEFAULT_HEARTBEAT_INTERVAL_MS } from '../defaults';
import type { EventDispatcher } from './event-dispatcher';

/** What a heartbeat reports of the worker. */
export interface HeartbeatCounts {
  /** Tasks running now. */
  active: number;
  /** Tasks finished since the worker started. */
  processed: number;
}

/** `sw_ident`, `sw_ver`, `sw_sys` of worker events, as Celery's `SOFTWARE_INFO`. */
export const SOFTWARE_INFO = {
  sw_ident: 'conveyor',
  sw_ver: coreVersionOrUnknown(),
  sw_sys: type(),
} as const;

/**
 * A worker's heartbeat, as Celery's `Heart`: `worker-online` at start, `worker-heartbeat` every
 * interval (2 s) with `freq`, `active`, `processed` and `loadavg`, and `worker-offline` at stop.
 * Monitors take a worker as gone once a heartbeat is overdue by twice the interval.
 */
export class WorkerHeart {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly dispatcher: EventDispatcher,
    private readonly counts: () => HeartbeatCounts,
    private readonly intervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS,
  ) {}

  /** Sends `worker-online` and starts beating. */
  start(): void {
    this.send('worker-online');
    this.timer = setInterval(() => this.send('worker-heartbeat'), this.intervalMs);
    this.timer.unref();
  }

  /** Sends a heartbeat now (the `heartbeat` control command). */
  beat(): void {
    this.send('worker-heartbeat');
  }

  /** Stops beating and sends `worker-offline`. */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    // Task events still batched go first, so monitors see them before the goodbye.
    this.dispatcher.flush();
    this.send('worker-offline');
  }

  private send(type: string): void {
    this.dispatcher.send(type, {
      freq: this.intervalMs / 1000,
      ...this.counts(),
      // Celery rounds each load average up to two decimals.
      loadavg: loadavg().map((l) => Math.ceil(l * 100) / 100),
      ...SOFTWARE_INFO,
    });
  }
}

function coreVersionOrUnknown(): string {
  try {
    return coreVersion();
  } catch {
    return 'unknown';
  }
}
