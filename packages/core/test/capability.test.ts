import {
  capabilitiesOf,
  ConfigError,
  hasCapability,
  MemoryResultBackend,
  MemoryTransport,
  requireCapability,
  type Transport,
} from '@conveyor/core';

/** A transport with the queueAdmin capability and no other (the memory transport has them all). */
class QueueAdminOnlyTransport implements Transport {
  private readonly inner = new MemoryTransport();
  connect = () => this.inner.connect();
  declareQueue: Transport['declareQueue'] = (q) => this.inner.declareQueue(q);
  publish: Transport['publish'] = (m, o) => this.inner.publish(m, o);
  consume: Transport['consume'] = (q, h, o) => this.inner.consume(q, h, o);
  broadcast: Transport['broadcast'] = (e, m) => this.inner.broadcast(e, m);
  subscribeBroadcast: Transport['subscribeBroadcast'] = (e, h) =>
    this.inner.subscribeBroadcast(e, h);
  queueStats = (q: string) => this.inner.queueStats(q);
  purgeQueue = (q: string) => this.inner.purgeQueue(q);
  close = () => this.inner.close();
}

describe('optional capabilities', () => {
  it('returns the transport, typed with the capability, when it has it', async () => {
    const transport = new MemoryTransport();
    const admin = requireCapability(transport, 'queueAdmin', 'queue inspection', 'any transport');
    expect(admin).toBe(transport);
    await admin.declareQueue({ name: 'q' });
    await expect(admin.queueStats('q')).resolves.toEqual({ ready: 0, consumers: 0 });
  });

  it('refuses a missing capability with a ConfigError naming it, the feature and who offers it', () => {
    const transport = new QueueAdminOnlyTransport();
    let error: unknown;
    try {
      requireCapability(transport, 'exchanges', 'task events', '@conveyor/amqp-transport');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('CONVEYOR_ERR_CONFIG');
    expect((error as Error).message).toBe(
      "task events needs the transport capability 'exchanges' (declareExchange, " +
        'publishToExchange, subscribeExchange), which QueueAdminOnlyTransport does not offer; ' +
        'use @conveyor/amqp-transport',
    );
  });

  it('names the backend capability the same way', () => {
    const backend = Object.assign(Object.create(null) as object, {
      increment: async () => 1,
    }) as unknown as MemoryResultBackend;
    expect(() =>
      requireCapability(backend, 'counters', 'the redelivery cap', '@conveyor/result-redis'),
    ).toThrow(
      "the redelivery cap needs the result backend capability 'counters' (increment, forgetCounter)",
    );
  });

  it('counts a capability only when every one of its members is there', () => {
    const partial = Object.assign(new QueueAdminOnlyTransport(), {
      declareExchange: async () => undefined,
    }) as Transport;
    expect(hasCapability(partial, 'exchanges')).toBe(false);
    expect(capabilitiesOf(partial)).toEqual(['queueAdmin']);
    expect(capabilitiesOf(new MemoryTransport())).toEqual([
      'exchanges',
      'queueAdmin',
      'prefetch',
      'queueAccess',
    ]);
    expect(capabilitiesOf(new MemoryResultBackend())).toEqual(['counters', 'leases']);
  });

  it('refuses a name that is no capability', () => {
    expect(() => hasCapability(new MemoryTransport(), 'teleport' as 'exchanges')).toThrow(
      ConfigError,
    );
  });
});
