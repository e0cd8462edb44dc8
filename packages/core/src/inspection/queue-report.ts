import { hasCapability, requireCapability } from '../capability/capability';
import { UnroutableError } from '../errors';
import { deadLetterQueueName, type QueueStats, type Transport } from '../transport/transport';

/** One task queue in a {@link QueueReport}. */
export interface TaskQueueReport extends QueueStats {
  name: string;
  /** False when the broker has no such queue (every count is then 0). */
  exists: boolean;
  /** Messages in its dead-letter queue (`<queue>.dead`); 0 when that queue does not exist. */
  dead: number;
}

/** What `conveyor queues` shows. */
export interface QueueReport {
  queues: TaskQueueReport[];
  /**
   * Messages waiting in delayed delivery (countdowns, etas, retries). The delay mechanism is
   * shared by every queue of the transport, so this is one total; absent when the transport
   * cannot tell (capability `delayStats`).
   */
  delayed?: number;
}

/**
 * Counts of task queues `queues` and their dead-letter queues, and the delayed total. Reads
 * only. Throws `ConfigError` when the transport lacks capability `queueAdmin`.
 */
export async function queueReport(
  transport: Transport,
  queues: readonly string[],
): Promise<QueueReport> {
  const admin = requireCapability(
    transport,
    'queueAdmin',
    'queue statistics (conveyor queues)',
    '@conveyor/amqp-transport',
  );
  const statsOf = (name: string): Promise<QueueStats | undefined> =>
    admin.queueStats(name).catch((error: unknown) => {
      if (error instanceof UnroutableError) return undefined;
      throw error;
    });
  const [rows, delayed] = await Promise.all([
    Promise.all(
      queues.map(async (name): Promise<TaskQueueReport> => {
        const [stats, dead] = await Promise.all([
          statsOf(name),
          statsOf(deadLetterQueueName(name)),
        ]);
        return {
          name,
          ...(stats ?? { ready: 0, consumers: 0 }),
          exists: stats !== undefined,
          dead: dead?.ready ?? 0,
        };
      }),
    ),
    hasCapability(transport, 'delayStats') ? transport.delayedCount() : undefined,
  ]);
  return { queues: rows, ...(delayed !== undefined && { delayed }) };
}
