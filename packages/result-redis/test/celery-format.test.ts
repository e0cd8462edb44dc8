import { randomUUID } from 'node:crypto';
import { RedisResultBackend } from '../src';
import { REDIS_URL } from '../../../test/support/services';
import { meta, RedisTestKit } from '../../../test/support/redis-backend';
import { celeryWireReference } from '../../../test/support/celery-reference';

const reference = celeryWireReference();

/** What Python's `json.dumps` writes (Celery's serializer): `", "` and `": "` separators. */
function pythonJsonDumps(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJsonDumps).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const fields = Object.entries(value).map(
      ([k, v]) => `${JSON.stringify(k)}: ${pythonJsonDumps(v)}`,
    );
    return `{${fields.join(', ')}}`;
  }
  return JSON.stringify(value);
}

describe('Celery result format on Redis', () => {
  let kit: RedisTestKit;

  beforeEach(() => {
    kit = new RedisTestKit();
  });
  afterEach(() => kit.cleanup());

  it("stores the JSON meta with Celery's field names under celery-task-meta-<id> by default", async () => {
    // The default key layout itself is under test here; the uuid task id keeps the key unique.
    const backend = kit.track(
      new RedisResultBackend({ url: REDIS_URL, connectionName: kit.connectionName }),
    );
    const id = randomUUID();
    kit.remember(`celery-task-meta-${id}`);
    await backend.store({ ...meta(id, 'SUCCESS', 9), name: 'tasks.add', args: [4, 5] });

    const raw = await kit.admin.get(`celery-task-meta-${id}`);
    expect(JSON.parse(raw!)).toEqual({
      status: 'SUCCESS',
      result: 9,
      traceback: null,
      children: [],
      date_done: '2026-11-24T04:15:21.037806',
      task_id: id,
      name: 'tasks.add',
      args: [4, 5],
    });
  });

  it('publishes the stored meta on the channel named by the key, as Celery subscribes to', async () => {
    const backend = kit.backend();
    const id = randomUUID();
    const listener = kit.client();
    const channel = `${kit.keyPrefix}${id}`;
    await listener.subscribe(channel);
    const received = new Promise<string>((resolve) =>
      listener.on('message', (_c, message) => resolve(message)),
    );

    const stored = meta(id, 'SUCCESS', 'hello');
    await backend.store(stored);
    expect(JSON.parse(await received)).toEqual(stored);
  });

  it.each(['success_meta', 'failure_meta'] as const)(
    'reads back a Celery-written %s intact, from get and from waitForReady',
    async (which) => {
      const celery = reference[which];
      const key = `${kit.keyPrefix}${celery.task_id}`;
      await kit.admin.set(key, pythonJsonDumps(celery));
      const backend = kit.backend();

      await expect(backend.get(celery.task_id)).resolves.toEqual(celery);
      await expect(backend.waitForReady(celery.task_id, 5_000)).resolves.toEqual(celery);
    },
  );

  it('keeps a Celery-written final result when a late STARTED is stored over it', async () => {
    const celery = reference.success_meta;
    const key = `${kit.keyPrefix}${celery.task_id}`;
    const text = pythonJsonDumps(celery);
    await kit.admin.set(key, text);
    const backend = kit.backend();

    await backend.store(meta(celery.task_id, 'STARTED'));
    await expect(kit.admin.get(key)).resolves.toBe(text);
  });

  it('reads the NaN and Infinity that Python writes bare, from get and from a publish', async () => {
    // Celery running tasks.add(1e308, 1e308) stores this: Python's json allows NaN by default.
    const id = randomUUID();
    const key = `${kit.keyPrefix}${id}`;
    const text = (result: string) =>
      `{"status": "SUCCESS", "result": ${result}, "traceback": null, "children": [], "date_done": "2026-11-30T10:00:00.000000", "task_id": "${id}"}`;
    await kit.admin.set(key, text('[Infinity, -Infinity, NaN, "NaN"]'));
    const backend = kit.backend();
    await expect(backend.get(id)).resolves.toMatchObject({
      result: [Infinity, -Infinity, NaN, 'NaN'],
    });

    const other = randomUUID();
    const otherKey = `${kit.keyPrefix}${other}`;
    const waiting = backend.waitForReady(other, 10_000);
    await waitForSubscriber(kit, otherKey);
    await kit.admin.publish(otherKey, text('Infinity').replace(id, other));
    await expect(waiting).resolves.toMatchObject({ task_id: other, result: Infinity });
  });

  it('wakes a waiter when a Celery-formatted result is published on the key channel', async () => {
    const backend = kit.backend();
    const celery = { ...reference.failure_meta, task_id: randomUUID() };
    const key = `${kit.keyPrefix}${celery.task_id}`;
    const waiting = backend.waitForReady(celery.task_id, 10_000);
    // Only the PUBLISH, no key: the wait can be woken by nothing but the message itself.
    await waitForSubscriber(kit, key);
    await kit.admin.publish(key, pythonJsonDumps(celery));
    await expect(waiting).resolves.toEqual(celery);
  });
});

async function waitForSubscriber(kit: RedisTestKit, channel: string): Promise<void> {
  for (;;) {
    const [, count] = (await kit.admin.pubsub('NUMSUB', channel)) as [string, number];
    if (Number(count) > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
