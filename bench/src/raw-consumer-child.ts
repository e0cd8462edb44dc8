/**
 * The ceiling's consumer, in its own process: raw amqplib, one connection, prefetch as the
 * Conveyor worker's. For every message it publishes a reply to the message's `replyTo` queue
 * (with its `correlationId`) when told to reply, then acks it.
 */
import { connect } from 'amqplib';
import { AckTarget, childConfig, fail, onParentMessage, send, stats } from './child-support';
import type { RawConsumerChildConfig } from './ipc';

async function main(): Promise<void> {
  const config = childConfig<RawConsumerChildConfig>('raw-consumer');
  const connection = await connect(config.amqpUrl, { noDelay: config.noDelay });
  const channel = await connection.createChannel();
  await channel.prefetch(config.prefetch);
  let acked = 0;
  const target = new AckTarget(() => acked);
  let consumerTag: string | undefined;
  onParentMessage(async (message) => {
    switch (message.type) {
      case 'start': {
        const consumer = await channel.consume(config.queue, (msg) => {
          if (!msg) return;
          const { replyTo, correlationId } = msg.properties as {
            replyTo?: string;
            correlationId?: string;
          };
          if (config.reply && replyTo) channel.publish('', replyTo, msg.content, { correlationId });
          channel.ack(msg);
          acked += 1;
          target.check();
        });
        consumerTag = consumer.consumerTag;
        send({ type: 'started' });
        return;
      }
      case 'stats':
        send(stats(acked));
        return;
      case 'notify-at':
        target.set(message.acked);
        return;
      case 'stop':
        if (consumerTag) await channel.cancel(consumerTag);
        await channel.close();
        await connection.close();
        send({ type: 'stopped' });
        setImmediate(() => process.exit(0));
        return;
    }
  });
  send({ type: 'ready' });
}

main().catch(fail);
