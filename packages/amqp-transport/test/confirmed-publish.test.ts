import { dirname, join } from 'node:path';
import { connect, type Options } from 'amqplib';
import { Conveyor, MemoryTransport, type TransportMessage } from '@conveyor/core';
import { publishConfirmed, publishFields } from '../src/confirmed-publish';
import { publishOptions } from '../src/message-mapping';
import { AMQP_URL, queueName, removeQueues } from '../../../test/support/amqp-transport';

// amqplib's own argument builder and frame encoders, to compare frames byte for byte. Its
// package exports only the entry point, so they are found beside it.
const amqplibLib = join(dirname(require.resolve('amqplib')), 'lib');
const amqplibArgs = require(join(amqplibLib, 'api_args')) as {
  publish(exchange: string, routingKey: string, options: Options.Publish): Record<string, unknown>;
};
const amqplibDefs = require(join(amqplibLib, 'defs')) as {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
};

/** The method and header frames of one publish, as amqplib would write them. */
function frames(fields: Record<string, unknown>): Buffer {
  return Buffer.concat([
    amqplibDefs.encodeMethod(amqplibDefs.BasicPublish, 1, fields),
    amqplibDefs.encodeProperties(amqplibDefs.BasicProperties, 1, 42, fields),
  ]);
}

async function celeryTaskMessage(): Promise<TransportMessage> {
  let sent: TransportMessage | undefined;
  class Capture extends MemoryTransport {
    override async publish(message: TransportMessage): Promise<void> {
      sent = message;
    }
  }
  const app = new Conveyor({ broker: new Capture(), tasks: [] });
  try {
    await app.send('tasks.add', [2, 3], { queue: 'celery', kwargs: { deep: { list: [1, 'x'] } } });
  } finally {
    await app.close();
  }
  return sent!;
}

describe('publishing without amqplib per-message prototype', () => {
  it('writes the same frames as amqplib publish for a Celery task message', async () => {
    const options = publishOptions(await celeryTaskMessage());
    expect(frames(publishFields('celery', 'celery', options))).toEqual(
      frames(amqplibArgs.publish('celery', 'celery', options)),
    );
  });

  it.each<[string, Options.Publish]>([
    ['no options', {}],
    ['persistent as a boolean', { persistent: true, mandatory: true }],
    ['deliveryMode as a boolean', { deliveryMode: true }],
    ['a numeric expiration', { expiration: 1500, priority: 3 }],
    [
      'every property',
      {
        headers: { a: 1, b: 'two', c: [true, null], d: { e: 2.5 } },
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 1,
        priority: 9,
        correlationId: 'c',
        replyTo: 'r',
        messageId: 'm',
        timestamp: 1_700_000_000,
        type: 't',
        appId: 'app',
      },
    ],
  ])('writes the same frames as amqplib publish with %s', (_label, options) => {
    expect(frames(publishFields('x', 'rk', options))).toEqual(
      frames(amqplibArgs.publish('x', 'rk', options)),
    );
  });

  it('delivers headers and properties as published, and takes CC through amqplib publish', async () => {
    const main = queueName('fast-publish');
    const copy = queueName('fast-publish-cc');
    const connection = await connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue(main, { durable: false });
      await channel.assertQueue(copy, { durable: false });
      const confirm = (options: Options.Publish) =>
        new Promise<void>((resolve, reject) => {
          publishConfirmed(channel, '', main, Buffer.from('body'), options, (error) =>
            error ? reject(error as Error) : resolve(),
          );
        });
      await confirm({ headers: { task: 'tasks.add', retries: 0 }, contentType: 'text/plain' });
      await confirm({ CC: copy, correlationId: 'cc' });

      const first = await channel.get(main, { noAck: true });
      expect(first && first.properties.headers).toEqual({ task: 'tasks.add', retries: 0 });
      expect(first && first.properties.contentType).toBe('text/plain');
      const second = await channel.get(main, { noAck: true });
      expect(second && second.properties.correlationId).toBe('cc');
      const copied = await channel.get(copy, { noAck: true });
      expect(copied && copied.properties.correlationId).toBe('cc');
    } finally {
      await connection.close();
      await removeQueues([main, copy]);
    }
  });
});
