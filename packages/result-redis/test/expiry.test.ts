import { randomUUID } from 'node:crypto';
import { meta, RedisTestKit } from '../../../test/support/redis-backend';

describe('result expiry', () => {
  let kit: RedisTestKit;

  beforeEach(() => {
    kit = new RedisTestKit();
  });
  afterEach(() => kit.cleanup());

  it('gives a stored result the configured TTL', async () => {
    const backend = kit.backend({ resultExpiresMs: 60_000 });
    const id = randomUUID();
    await backend.store(meta(id, 'SUCCESS', 1));
    const pttl = await kit.admin.pttl(`${kit.keyPrefix}${id}`);
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
  });

  it('expires results after one day by default, as Celery does', async () => {
    const backend = kit.backend();
    const id = randomUUID();
    await backend.store(meta(id, 'STARTED'));
    const pttl = await kit.admin.pttl(`${kit.keyPrefix}${id}`);
    expect(pttl).toBeGreaterThan(86_400_000 - 5_000);
    expect(pttl).toBeLessThanOrEqual(86_400_000);
  });

  it('renews the TTL when a later state replaces an earlier one', async () => {
    const backend = kit.backend({ resultExpiresMs: 60_000 });
    const id = randomUUID();
    const key = `${kit.keyPrefix}${id}`;
    await backend.store(meta(id, 'STARTED'));
    await kit.admin.pexpire(key, 1_000);
    await backend.store(meta(id, 'SUCCESS', 1));
    expect(await kit.admin.pttl(key)).toBeGreaterThan(55_000);
  });

  it('keeps results forever when resultExpiresMs is 0', async () => {
    const backend = kit.backend({ resultExpiresMs: 0 });
    const id = randomUUID();
    await backend.store(meta(id, 'SUCCESS', 1));
    expect(await kit.admin.pttl(`${kit.keyPrefix}${id}`)).toBe(-1);
  });

  it('gives stored groups the same TTL, and none when resultExpiresMs is 0', async () => {
    const expiring = kit.backend({ resultExpiresMs: 60_000 });
    const forever = kit.backend({ resultExpiresMs: 0 });
    const [a, b] = [randomUUID(), randomUUID()];
    await expiring.storeGroup({ group_id: a, result: [] });
    await forever.storeGroup({ group_id: b, result: [] });
    const pttl = await kit.admin.pttl(`${kit.groupKeyPrefix}${a}`);
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect(await kit.admin.pttl(`${kit.groupKeyPrefix}${b}`)).toBe(-1);
  });
});
