import { queueInspectionOf, type QueueStatistics } from '../transport/queue-inspection';
import { deadLetterQueueName, type Transport } from '../transport/transport';

/** One task queue in a {@link QueueReport}. */
export interface TaskQueueReport extends QueueStatistics {
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
   * cannot tell.
   */
  delayed?: number;
}

/**
 * Counts of task queues `queues` and their dead-letter queues, and the delayed total. Reads
 * only. Throws `ConfigError` when the transport cannot inspect queues.
 */
export async function queueReport(
  transport: Transport,
  queues: readonly string[],
): Promise<QueueReport> {
  const inspection = queueInspectionOf(transport);
  const [statistics, dead, delayed] = await Promise.all([
    inspection.queueStatistics(queues),
    inspection.queueStatistics(queues.map(deadLetterQueueName)),
    inspection.delayedCount(),
  ]);
  return {
    queues: queues.map((name, index) => ({
      ...(statistics[index] ?? { name, ready: 0, consumers: 0 }),
      exists: statistics[index] !== undefined,
      dead: dead[index]?.ready ?? 0,
    })),
    ...(delayed !== undefined && { delayed }),
  };
}
