import { Socket } from 'node:net';
import { ConfigError, UnroutableError } from '@conveyor/core';
import { sleep, waitFor } from '@conveyor/core/testing';
import { TcpProxy } from '../../../test/support/tcp-proxy';
import { AmqpTransport } from '../src';
import {
  AMQP_URL,
  queueName,
  readyCount,
  testTransport,
  textMessage,
  withRawChannel,
  useTestTransport,
} from '../../../test/support/amqp-transport';

const ctx = useTestTransport();
const { queues } = ctx;

async function declared(label: string, maxPriority?: number): Promise<string> {
  const name = queueName(label);
  queues.push(name);
  await ctx.transport.declareQueue({ name, maxPriority });
  return name;
}

/**
 * Runs `body` with a transport behind a proxy that holds the broker's replies (so no confirm
 * arrives), its queue declared and its publish channel already open; puts everything back after.
 */
async function withConfirmsHeld(
  label: string,
  maxUnconfirmed: number,
  body: (held: { proxy: TcpProxy; transport: AmqpTransport; queue: string }) => Promise<void>,
): Promise<void> {
  const target = new URL(AMQP_URL);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5672));
  await proxy.start();
  const transport = testTransport({
    url: proxy.rewrite(AMQP_URL),
    delayNamespace: ctx.namespace,
    maxUnconfirmed,
  });
  try {
    const queue = queueName(label);
    queues.push(queue);
    await transport.declareQueue({ name: queue });
    // Channel open and exchange known before the confirms are held: what follows is the burst.
    await transport.publish(textMessage('first'), { queue });
    proxy.holdReplies();
    await body({ proxy, transport, queue });
  } finally {
    proxy.releaseReplies();
    await transport.close();
    await proxy.stop();
  }
}

describe('publisher confirms', () => {
  it('resolves only once the broker holds the message', async () => {
    const q = await declared('confirm');
    await ctx.transport.publish(textMessage('confirmed'), { queue: q });
    expect(await readyCount(q)).toBe(1);
  });

  it('rejects with UnroutableError when the exchange exists but no queue is bound (basic.return)', async () => {
    const q = await declared('returned');
    const other = await declared('routable');
    await withRawChannel((ch) => ch.deleteQueue(q));
    const results = await Promise.allSettled([
      ctx.transport.publish(textMessage('a'), { queue: other }),
      ctx.transport.publish(textMessage('lost'), { queue: q }),
      ctx.transport.publish(textMessage('b'), { queue: other }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(UnroutableError);
    expect(await readyCount(other)).toBe(2);
  });

  it('rejects with UnroutableError when the exchange itself does not exist, and other publishes still succeed', async () => {
    const q = await declared('no-exchange');
    const missing = queueName('missing');
    queues.push(missing);
    const results = await Promise.allSettled([
      ctx.transport.publish(textMessage('x'), { queue: missing }),
      ctx.transport.publish(textMessage('y'), { queue: q }),
    ]);
    expect((results[0] as PromiseRejectedResult).reason).toBeInstanceOf(UnroutableError);
    expect(results[1]!.status).toBe('fulfilled');
  });

  it('rejects a publish to an exchange deleted after it was known with UnroutableError, not a dead channel', async () => {
    const q = await declared('deleted-exchange');
    await withRawChannel(async (ch) => {
      await ch.deleteQueue(q);
      await ch.deleteExchange(q);
    });
    await expect(ctx.transport.publish(textMessage('x'), { queue: q })).rejects.toBeInstanceOf(
      UnroutableError,
    );
    // The 404 closed the confirm channel; the next publish uses a new one.
    const other = await declared('after-404');
    await ctx.transport.publish(textMessage('y'), { queue: other });
    expect(await readyCount(other)).toBe(1);
  });

  it('lets a publish under way finish on close, and reopens on the next call', async () => {
    const q = await declared('closed');
    const publishing = ctx.transport.publish(textMessage('in flight'), { queue: q });
    await ctx.transport.close();
    await publishing;
    // A closed transport reopens on the next call, as the memory ctx.transport does.
    await ctx.transport.publish(textMessage('again'), { queue: q });
    expect(await readyCount(q)).toBe(2);
  });
});

describe('message mapping', () => {
  it('carries properties and JSON-like headers (null, arrays, nested objects, floats) faithfully', async () => {
    const q = await declared('mapping', 10);
    const headers = {
      task: 'tasks.add',
      id: 'abc',
      nothing: null,
      list: [1, 'two', null, [3]],
      nested: { a: { b: [true, false] }, c: 2.5 },
      big: 2 ** 40,
      negative: -7,
    };
    await ctx.transport.publish(
      {
        headers,
        properties: {
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          correlationId: 'corr-1',
          replyTo: 'replies',
          priority: 7,
          deliveryMode: 1,
          messageId: 'mid-1',
        },
        body: Buffer.from('[[], {}, {}]'),
      },
      { queue: q },
    );
    const got = await withRawChannel((ch) => ch.get(q, { noAck: true }));
    if (got === false) throw new Error('no message');
    expect(got.content.toString()).toBe('[[], {}, {}]');
    expect(got.properties.headers).toEqual(headers);
    expect(got.properties).toMatchObject({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      correlationId: 'corr-1',
      replyTo: 'replies',
      priority: 7,
      deliveryMode: 1,
      messageId: 'mid-1',
    });
  });

  it('publishes persistent messages unless told otherwise', async () => {
    const q = await declared('persistent');
    await ctx.transport.publish(
      { headers: {}, properties: {}, body: Buffer.from('p') },
      { queue: q },
    );
    const got = await withRawChannel((ch) => ch.get(q, { noAck: true }));
    expect(got && got.properties.deliveryMode).toBe(2);
  });
});

describe('back-pressure', () => {
  it('delivers every message of a burst of 20,000 publishes', async () => {
    const q = await declared('burst');
    const n = 20_000;
    const body = Buffer.alloc(512, 'x');
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        ctx.transport.publish(
          { headers: { i }, properties: { contentType: 'text/plain' }, body },
          { queue: q },
        ),
      ),
    );
    const rssAfter = process.memoryUsage().rss;
    // Informational only: no assertion on speed or memory.
    console.log(
      `20k publishes: ${Date.now() - started} ms, RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> ${(rssAfter / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(await readyCount(q)).toBe(n);
  }, 60_000);
});

describe('socket writes', () => {
  /**
   * Counts the writes Node hands to the OS for sockets to `port` (one `_write` or `_writev` is
   * one write request, however many frames it carries) until `stop()`.
   */
  function countSocketWrites(port: number): { count: () => number; stop: () => void } {
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', unknown>;
    const originals = { _write: proto._write, _writev: proto._writev };
    let writes = 0;
    for (const method of ['_write', '_writev'] as const) {
      const original = originals[method] as (this: Socket, ...args: unknown[]) => unknown;
      proto[method] = function (this: Socket, ...args: unknown[]) {
        if (this.remotePort === port) writes += 1;
        return original.apply(this, args);
      };
    }
    return {
      count: () => writes,
      stop: () => Object.assign(proto, originals),
    };
  }

  it('writes a full window of publishes in a few socket writes, not one per message', async () => {
    const window = 256;
    // No confirm comes back while the window fills, so what is counted is the fill alone:
    // how confirms trickle back (one by one on an idle machine) does not enter into it.
    await withConfirmsHeld('writes', window, async ({ proxy, transport, queue }) => {
      const writes = countSocketWrites(proxy.port);
      try {
        const body = Buffer.alloc(400, 'x');
        const publishes = Array.from({ length: 1_000 }, (_, i) =>
          transport.publish(
            { headers: { i }, properties: { contentType: 'text/plain' }, body },
            { queue },
          ),
        );
        await waitFor(async () => (await readyCount(queue)) === window + 1, 'a full window');
        // 256 publishes are about 120 KiB: one write when the socket takes it whole, one write
        // per message past the first 16 KiB (Node's default mark) or without the cork.
        expect(writes.count()).toBeLessThan(10);
        proxy.releaseReplies();
        await Promise.all(publishes);
        expect(await readyCount(queue)).toBe(1_001);
      } finally {
        writes.stop();
      }
    });
  }, 30_000);
});

describe('the window of unconfirmed publishes', () => {
  it('writes no more than maxUnconfirmed publishes while their confirms are held back, and the rest once they come', async () => {
    await withConfirmsHeld('window', 4, async ({ proxy, transport, queue }) => {
      const publishes = Array.from({ length: 20 }, (_, i) =>
        transport.publish(textMessage(String(i)), { queue }),
      );
      await waitFor(async () => (await readyCount(queue)) === 5, 'the first four of the burst');
      // Without the window all twenty would reach the broker in this time.
      await sleep(500);
      expect(await readyCount(queue)).toBe(5);
      proxy.releaseReplies();
      await Promise.all(publishes);
      expect(await readyCount(queue)).toBe(21);
    });
  }, 30_000);

  it('refuses a window that is not a positive integer', () => {
    for (const maxUnconfirmed of [0, -1, 1.5, Number.NaN]) {
      expect(() => new AmqpTransport({ maxUnconfirmed })).toThrow(ConfigError);
    }
  });
});
