import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  RedisResultBackend,
  type RedisResultBackendOptions,
} from '../../packages/result-redis/src';
import { REDIS_URL } from './services';

/**
 * A test's own corner of the shared Redis: a uuid key prefix, backends using it, an admin
 * connection to look at the server, and cleanup that deletes the test's keys and closes
 * everything it opened.
 */
export class RedisTestKit {
  readonly prefix = `test:${randomUUID()}:`;
  readonly keyPrefix = `${this.prefix}celery-task-meta-`;
  readonly groupKeyPrefix = `${this.prefix}celery-taskset-meta-`;
  /** A connection name unique to this kit, to find its connections in CLIENT LIST. */
  readonly connectionName = `conveyor:test-${randomUUID().slice(0, 8)}`;
  readonly admin = new Redis(REDIS_URL, { connectionName: 'conveyor:test-admin' });
  private readonly backends: RedisResultBackend[] = [];
  private readonly clients: Redis[] = [];
  private readonly extraKeys: Array<{ db: number; key: string }> = [];

  backend(options: RedisResultBackendOptions = {}): RedisResultBackend {
    const backend = new RedisResultBackend({
      keyPrefix: this.keyPrefix,
      groupKeyPrefix: this.groupKeyPrefix,
      connectionName: this.connectionName,
      ...(options.client ? {} : { url: REDIS_URL }),
      ...options,
    });
    return this.track(backend);
  }

  track<T extends RedisResultBackend>(backend: T): T {
    this.backends.push(backend);
    return backend;
  }

  /** A plain ioredis connection, closed in {@link cleanup}. */
  client(url = REDIS_URL): Redis {
    const client = new Redis(url);
    this.clients.push(client);
    return client;
  }

  /** A key outside the prefix (e.g. Celery's default layout, another db) to delete afterwards. */
  remember(key: string, db = 0): void {
    this.extraKeys.push({ db, key });
  }

  /** CLIENT LIST entries named `name`, as field maps. */
  async clientsNamed(name: string): Promise<Array<Record<string, string>>> {
    const list = (await this.admin.client('LIST')) as string;
    return list
      .split('\n')
      .filter(Boolean)
      .map((line) =>
        Object.fromEntries(line.split(' ').map((field) => field.split('=', 2) as [string, string])),
      )
      .filter((fields) => fields.name === name);
  }

  get subscriberName(): string {
    return `${this.connectionName}-sub:${process.pid}`;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.backends.splice(0).map((b) => b.close()));
    let cursor = '0';
    do {
      const [next, keys] = await this.admin.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await this.admin.del(...keys);
      cursor = next;
    } while (cursor !== '0');
    for (const { db, key } of this.extraKeys.splice(0)) {
      await this.admin.select(db);
      await this.admin.del(key);
    }
    await this.admin.select(0);
    await Promise.all(this.clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    await this.admin.quit();
  }
}

export { metaOf as meta } from '@conveyor/core/testing';
