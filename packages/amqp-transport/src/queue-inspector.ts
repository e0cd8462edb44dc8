import type { Channel, ChannelModel } from 'amqplib';
import { UnroutableError, type QueueStats } from '@conveyor/core/plugin';
import { replyCode } from './broker-errors';
import { DELAY_LEVELS } from './defaults';
import type { DelayTopology } from './delayed-delivery';
import type { ManagementApi } from './management-api';
import { withChannel } from './topology';

/**
 * Queue statistics and purges (capabilities `queueAdmin` and `delayStats`). Ready messages and
 * consumers come from a passive declare (live, and it never creates a queue); unacked messages
 * and rates from the management API when it answers.
 * @internal
 */
export class QueueInspector {
  constructor(
    private readonly delay: DelayTopology,
    private readonly management: ManagementApi | undefined,
  ) {}

  async stats(model: ChannelModel, name: string): Promise<QueueStats> {
    const [counts, figures] = await Promise.all([
      passiveCounts(model, [name]),
      this.management?.queue(name),
    ]);
    const [found] = counts;
    if (!found) throw new UnroutableError('', name);
    return {
      ready: found.messageCount,
      consumers: found.consumerCount,
      ...(figures && { unacked: figures.unacked, rates: figures.rates }),
    };
  }

  /** Messages in every delay level of the namespace (none are unacked: levels have no consumer). */
  async delayedCount(model: ChannelModel): Promise<number> {
    const levels = Array.from({ length: DELAY_LEVELS }, (_, level) => this.delay.levelName(level));
    const counted = await passiveCounts(model, levels);
    return counted.reduce((total, counts) => total + (counts?.messageCount ?? 0), 0);
  }

  async purge(model: ChannelModel, name: string): Promise<number> {
    return withChannel(model, async (channel) => {
      try {
        return (await channel.purgeQueue(name)).messageCount;
      } catch (error) {
        if (replyCode(error) === 404) throw new UnroutableError('', name);
        throw error;
      }
    });
  }
}

interface Counts {
  messageCount: number;
  consumerCount: number;
}

/**
 * Passive declares of `names`, in order, `undefined` for a queue that does not exist. RabbitMQ
 * answers a missing queue by closing the channel, so a new channel follows each 404.
 */
async function passiveCounts(
  model: ChannelModel,
  names: readonly string[],
): Promise<Array<Counts | undefined>> {
  const counts: Array<Counts | undefined> = [];
  let channel: Channel | undefined;
  try {
    for (const name of names) {
      if (!channel) {
        channel = await model.createChannel();
        channel.on('error', () => undefined);
      }
      try {
        const ok = await channel.checkQueue(name);
        counts.push({ messageCount: ok.messageCount, consumerCount: ok.consumerCount });
      } catch (error) {
        if (replyCode(error) !== 404) throw error;
        counts.push(undefined);
        channel = undefined;
      }
    }
  } finally {
    await channel?.close().catch(() => undefined);
  }
  return counts;
}
