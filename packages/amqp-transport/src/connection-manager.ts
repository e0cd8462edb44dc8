import { hostname } from 'node:os';
import { connect, type ChannelModel, type SocketOptions } from 'amqplib';
import { ConnectionError } from '@conveyor/core/plugin';
import { closeConnection } from './bounded-close';
import type { AmqpTransportLogger } from './amqp-transport-options';
import type { Redactor } from '@conveyor/core/plugin';
import type { BrokerUrl } from './broker-url';
import { handshakeRefusal, messageOf } from './broker-errors';
import { HANDSHAKE_TIMEOUT_MS, SOCKET_WRITE_HIGH_WATER_MARK } from './defaults';
import { reconnectDelay, type ReconnectSettings } from './reconnect-backoff';

/** What a connection is used for; publishing and consuming never share one (see README). */
export type ConnectionRole = 'publisher' | 'consumer';

/** Settings of one {@link ConnectionManager}. */
export interface ConnectionManagerSettings {
  urls: readonly BrokerUrl[];
  /** Hides the URLs' credentials in every message this connection emits. */
  redactor: Redactor;
  role: ConnectionRole;
  connectionName: string;
  reconnect: ReconnectSettings;
  logger: AmqpTransportLogger;
}

/** Runs on each new connection before it is handed to anyone (redeclare, resume consumers). */
export type ConnectedListener = (model: ChannelModel, reconnected: boolean) => Promise<void>;

interface Waiter {
  resolve(model: ChannelModel): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

/**
 * One logical broker connection that outlives its TCP connections: it connects on first use,
 * and when the connection drops it reconnects (each URL in turn, exponential backoff with jitter
 * between rounds) until closed. amqplib's own `connectWithRecovery` is not used because it knows
 * one URL only and its channels do not survive a reconnect either.
 * @internal
 */
export class ConnectionManager {
  /** The `connection_name` RabbitMQ shows: name, role, host and pid. */
  readonly displayName: string;
  private model?: ChannelModel;
  private running = false;
  private closed = false;
  private urlIndex = 0;
  private lastFailure?: string;
  private connectedBefore = false;
  private runner?: Promise<void>;
  private wake?: () => void;
  private readonly waiters = new Set<Waiter>();
  private readonly connectedListeners: ConnectedListener[] = [];
  private readonly lostListeners: Array<() => void> = [];

  constructor(private readonly settings: ConnectionManagerSettings) {
    this.displayName = `${settings.connectionName} ${settings.role} (host ${hostname()}, pid ${process.pid})`;
  }

  /** The open connection, if there is one now. */
  get current(): ChannelModel | undefined {
    return this.model;
  }

  /** Called with every new connection, before waiters get it. */
  onConnected(listener: ConnectedListener): void {
    this.connectedListeners.push(listener);
  }

  /** Called when the open connection is lost. */
  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  /**
   * The open connection, connecting first if needed. Rejects with `ConnectionError` after
   * `timeoutMs` (if given) or when the manager is closed.
   */
  connection(timeoutMs?: number): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.model) return Promise.resolve(this.model);
    this.start();
    return new Promise<ChannelModel>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(this.unreachableError(timeoutMs));
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  /** Why the last connection attempt failed, redacted; for error messages. */
  get failure(): string | undefined {
    return this.lastFailure;
  }

  /** An error saying no connection came within `ms`. */
  unreachableError(ms: number): ConnectionError {
    const where = this.settings.urls.map((u) => u.redacted).join(', ');
    const why = this.lastFailure ? `; last error: ${this.lastFailure}` : '';
    return new ConnectionError(
      `no ${this.settings.role} connection to ${where} within ${ms} ms${why}`,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(this.closedError());
    }
    this.waiters.clear();
    const model = this.model;
    this.model = undefined;
    if (model) await closeConnection(model);
    // A connect in flight would otherwise open a connection nobody closes.
    await this.runner;
  }

  private start(): void {
    if (this.running || this.closed || this.model) return;
    this.running = true;
    this.runner = this.run().finally(() => {
      this.running = false;
    });
  }

  private async run(): Promise<void> {
    const { urls } = this.settings;
    let failures = 0;
    let refusals = 0;
    while (!this.closed) {
      const url = urls[this.urlIndex]!;
      try {
        const model = await connect(url.href, this.socketOptions());
        if (this.closed) {
          await closeConnection(model);
          return;
        }
        await this.adopt(model, url);
        return;
      } catch (error) {
        const refusal = handshakeRefusal(error, url.href);
        this.lastFailure = this.settings.redactor.redact(
          `${url.redacted}: ${refusal ?? messageOf(error)}`,
        );
        this.urlIndex = (this.urlIndex + 1) % urls.length;
        failures += 1;
        refusals = refusal === undefined ? 0 : refusals + 1;
        // Every broker refused us for good (credentials, vhost): waiting callers learn why at
        // once instead of at their timeout; a first connection stops trying.
        if (refusals >= urls.length) {
          this.refuseWaiters(error);
          if (!this.connectedBefore) {
            this.settings.logger.warn(
              `${this.displayName}: cannot connect (${this.lastFailure}); not retrying`,
            );
            return;
          }
        }
        // The next URL is tried at once; a full round of failures earns a pause.
        if (failures % urls.length === 0) {
          const round = failures / urls.length;
          const delay = reconnectDelay(round, this.settings.reconnect);
          this.settings.logger.warn(
            `${this.displayName}: cannot connect (${this.lastFailure}); retrying in ${delay} ms`,
          );
          await this.pause(delay);
        }
      }
    }
  }

  /** Rejects the callers waiting for a connection with why the broker refused it. */
  private refuseWaiters(cause: unknown): void {
    const where = this.settings.urls.map((u) => u.redacted).join(', ');
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(
        new ConnectionError(
          `the broker refused the ${this.settings.role} connection: ${this.lastFailure ?? where}`,
          { cause },
        ),
      );
    }
    this.waiters.clear();
  }

  /** Runs the connected listeners, then hands the connection out; throws if it died meanwhile. */
  private async adopt(model: ChannelModel, url: BrokerUrl): Promise<void> {
    let alive = true;
    model.on('error', (error: Error) => {
      this.lastFailure = this.settings.redactor.redact(`${url.redacted}: ${messageOf(error)}`);
    });
    model.on('close', (error?: Error) => {
      alive = false;
      this.handleClose(model, error);
    });
    for (const listener of this.connectedListeners) {
      try {
        await listener(model, this.connectedBefore);
      } catch (error) {
        this.settings.logger.warn(
          `${this.displayName}: setup after connecting failed: ${this.settings.redactor.redact(messageOf(error))}`,
        );
      }
    }
    if (!alive || this.closed) throw new Error('connection closed during setup');
    this.model = model;
    this.connectedBefore = true;
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(model);
    }
    this.waiters.clear();
  }

  private handleClose(model: ChannelModel, error?: Error): void {
    if (this.model !== model) return;
    this.model = undefined;
    for (const listener of this.lostListeners) listener();
    if (this.closed) return;
    this.settings.logger.warn(
      `${this.displayName}: connection lost (${this.settings.redactor.redact(messageOf(error ?? 'closed'))}); reconnecting`,
    );
    this.start();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * amqplib hands these to `net.connect` (or `tls.connect`), which builds the socket from them.
   * `tls.connect` ignores `writableHighWaterMark` (Node 20): amqps sockets keep 16 KiB.
   */
  private socketOptions(): SocketOptions & { writableHighWaterMark: number } {
    return {
      // Nagle's algorithm holds small frames back (~40 ms a round trip with delayed acks).
      noDelay: true,
      keepAlive: true,
      writableHighWaterMark: SOCKET_WRITE_HIGH_WATER_MARK,
      timeout: HANDSHAKE_TIMEOUT_MS,
      clientProperties: { connection_name: this.displayName },
    };
  }

  private closedError(): ConnectionError {
    return new ConnectionError(`the AMQP ${this.settings.role} connection is closed`);
  }
}
