import type { Client } from 'pg';
import { MAX_LISTEN_RECONNECT_DELAY_MS } from './defaults';
import { quoteIdentifier } from './schema';

/** Settings of a {@link NotificationListener}. */
export interface NotificationListenerOptions {
  /** A new, unconnected client; called again after every lost connection. */
  createClient: () => Client;
  channel: string;
  /** Called with each notification's payload (see {@link taskIdsOfPayload}). */
  onNotification: (payload: string) => void;
  /** Called after every (re)connection, since notifications sent while away are lost. */
  onListening: () => void;
  /** Called when a listening connection is lost or stopped: notifications are missed until the next {@link onListening}. */
  onLost?: () => void;
  onError: (error: unknown) => void;
}

/**
 * Holds one dedicated connection that LISTENs for results being stored, to wake the poller
 * early. Only a latency optimisation: a notification can be lost (connection down, listener
 * starting), which is why the poller never stops polling while waits are pending.
 */
export class NotificationListener {
  private client?: Client;
  private running = false;
  private connecting = false;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly options: NotificationListenerOptions) {}

  /** Starts listening in the background (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  /** Closes the connection and stops reconnecting. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      this.options.onLost?.();
      await client.end().catch(() => undefined);
    }
  }

  private async connect(): Promise<void> {
    if (!this.running || this.connecting || this.client) return;
    this.connecting = true;
    const client = this.options.createClient();
    let lost = false;
    const onLost = (error?: unknown): void => {
      if (lost) return;
      lost = true;
      if (this.client === client) {
        this.client = undefined;
        this.options.onLost?.();
      }
      void client.end().catch(() => undefined);
      if (!this.running) return;
      if (error !== undefined) this.options.onError(error);
      this.retryLater();
    };
    // Registered before connecting: an unhandled 'error' on a pg client would crash the process.
    client.on('error', (error) => onLost(error));
    client.on('end', () => onLost());
    client.on('notification', (message) => {
      if (message.payload) this.options.onNotification(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${quoteIdentifier(this.options.channel)}`);
      this.connecting = false;
      if (lost) return;
      if (!this.running) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.failures = 0;
      this.options.onListening();
    } catch (error) {
      this.connecting = false;
      onLost(error);
    }
  }

  private retryLater(): void {
    clearTimeout(this.retryTimer);
    this.failures += 1;
    const delay = Math.min(100 * 2 ** (this.failures - 1), MAX_LISTEN_RECONNECT_DELAY_MS);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }
}

/**
 * The task ids a notification names. A store of one row sends its task id; a batch sends a JSON
 * array of ids (as many notifications as the 8,000-byte payload limit needs). The payload is
 * also returned whole, so that an id that happens to look like a JSON array is never missed.
 */
export function taskIdsOfPayload(payload: string): string[] {
  if (!payload.startsWith('[')) return [payload];
  try {
    const parsed: unknown = JSON.parse(payload);
    if (Array.isArray(parsed)) {
      return [payload, ...parsed.filter((id): id is string => typeof id === 'string')];
    }
  } catch {
    // Not JSON: a task id starting with '['.
  }
  return [payload];
}
