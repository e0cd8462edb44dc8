import { randomUUID } from 'node:crypto';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { delayNamespace, removeDelayNamespace, removeQueues } from '../support/rabbitmq';
import { AMQP_URL } from '../support/services';
import { TcpProxy } from '../support/tcp-proxy';

/**
 * Shutdown must not depend on the network: a worker that gets SIGTERM while its broker
 * connection is down has to exit. `close()` is bounded here by a race, so a hang fails the
 * test instead of the run.
 */
describe('faults: closing the AMQP transport while its connection is down', () => {
  let proxy: TcpProxy;
  let transport: AmqpTransport;
  const queue = `faults-close-${randomUUID()}`;
  const namespace = delayNamespace();

  beforeEach(async () => {
    proxy = await TcpProxy.to(AMQP_URL);
    transport = new AmqpTransport({
      url: proxy.rewrite(AMQP_URL),
      delayNamespace: namespace,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      onError: () => undefined,
    });
    await transport.declareQueue({ name: queue });
    await transport.publish(
      { headers: {}, properties: { contentType: 'text/plain' }, body: Buffer.from('x') },
      { queue },
    );
  });
  afterEach(async () => {
    await proxy.stop();
    await removeQueues([queue]);
  });
  afterAll(async () => {
    await removeDelayNamespace(namespace);
  });

  const closesWithin = async (ms: number): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>(
      (resolve) => (timer = setTimeout(() => resolve(false), ms)),
    );
    const closed = await Promise.race([transport.close().then(() => true), timedOut]);
    clearTimeout(timer);
    return closed;
  };

  it('close() right after the connection was cut resolves within 5 s', async () => {
    proxy.cut();
    expect(await closesWithin(5_000)).toBe(true);
  });

  it('close() while the broker is unreachable resolves within 5 s and stops reconnecting', async () => {
    proxy.block();
    expect(await closesWithin(5_000)).toBe(true);
    const before = proxy.connections;
    proxy.unblock();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(proxy.connections).toBe(before);
  });
});
