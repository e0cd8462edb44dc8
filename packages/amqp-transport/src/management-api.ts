import type { QueueRates } from '@conveyor/core/plugin';
import { DEFAULT_MANAGEMENT_PORT, DEFAULT_MANAGEMENT_TIMEOUT_MS } from './defaults';

/** What the management API adds to a passive declare: counts AMQP does not report. */
export interface ManagedQueueFigures {
  unacked: number;
  rates: QueueRates;
}

/** The fields of `GET /api/queues/<vhost>/<name>` that are read. */
interface QueueDocument {
  messages_unacknowledged?: number;
  message_stats?: {
    publish_details?: { rate?: number };
    deliver_get_details?: { rate?: number };
    ack_details?: { rate?: number };
  };
}

/**
 * RabbitMQ's management API (the `rabbitmq_management` plugin, HTTP), asked for what a passive
 * declare cannot tell: unacknowledged messages and rates. Optional by nature: when it is not
 * enabled or not reachable, every answer is `undefined` and the caller shows what AMQP told it.
 * Its figures are sampled (every 5 s by default), not live.
 * @internal
 */
export class ManagementApi {
  private readonly authorization: string | undefined;
  private readonly origin: string;

  constructor(
    base: URL,
    private readonly vhost: string,
    private readonly timeoutMs = DEFAULT_MANAGEMENT_TIMEOUT_MS,
  ) {
    this.origin = `${base.protocol}//${base.host}${base.pathname.replace(/\/+$/, '')}`;
    this.authorization = base.username
      ? `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`
      : undefined;
  }

  /**
   * The API beside broker `brokerUrl` (same host and credentials, port 15672, its vhost), or the
   * one at `managementUrl` for the broker's vhost.
   */
  static forBroker(brokerUrl: string, managementUrl?: string): ManagementApi {
    const broker = new URL(brokerUrl);
    const vhost = broker.pathname.length > 1 ? decodeURIComponent(broker.pathname.slice(1)) : '/';
    if (managementUrl !== undefined) return new ManagementApi(new URL(managementUrl), vhost);
    const base = new URL(`http://${broker.hostname}:${DEFAULT_MANAGEMENT_PORT}/`);
    base.username = broker.username || 'guest';
    base.password = broker.password || 'guest';
    if (broker.hostname.includes(':')) base.hostname = `[${broker.hostname}]`;
    return new ManagementApi(base, vhost);
  }

  /** Unacked messages and rates of `queue`, or `undefined` if the API cannot say. */
  async queue(queue: string): Promise<ManagedQueueFigures | undefined> {
    const path = `/api/queues/${encodeURIComponent(this.vhost)}/${encodeURIComponent(queue)}`;
    let response: Response;
    try {
      response = await fetch(`${this.origin}${path}`, {
        headers: this.authorization ? { authorization: this.authorization } : {},
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch {
      return undefined; // not enabled, not reachable, or too slow: AMQP's figures stand alone.
    }
    if (!response.ok) {
      await response.body?.cancel();
      return undefined;
    }
    const document = (await response.json()) as QueueDocument;
    const stats = document.message_stats ?? {};
    return {
      unacked: document.messages_unacknowledged ?? 0,
      rates: {
        published: stats.publish_details?.rate ?? 0,
        delivered: stats.deliver_get_details?.rate ?? 0,
        acked: stats.ack_details?.rate ?? 0,
      },
    };
  }
}
