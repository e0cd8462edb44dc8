import { Redis } from 'ioredis';
import type { AsyncResult } from '@conveyor/core';
import { REDIS_URL } from '../support/services';
import { useFaultScopes, type BackendKind } from '../support/faults/fault-scope';
import { WorkerProcess } from '../support/faults/worker-process';

const WAITS = 10_000;

/** Names of this process's Redis connections, from CLIENT LIST. */
async function connectionNames(): Promise<string[]> {
  const redis = new Redis(REDIS_URL);
  try {
    const list = (await redis.client('LIST')) as string;
    return list
      .split('\n')
      .map((line) => /\bname=(\S*)/.exec(line)?.[1] ?? '')
      .filter((name) => name.endsWith(`:${process.pid}`));
  } finally {
    redis.disconnect();
  }
}

describe.each(['redis', 'postgres'] as BackendKind[])(
  'acceptance: %s backend, 10,000 concurrent get()',
  (kind) => {
    const openScope = useFaultScopes();

    it(`${WAITS} concurrent get() on tasks completed by a worker all resolve${kind === 'redis' ? ', over one subscriber connection' : ''}`, async () => {
      const scope = openScope(`accept-get-${kind}`, kind);
      // Default connection names (conveyor:results:<pid>, conveyor:results-sub:<pid>). Jest runs
      // other files in this process first; one that failed to close would leave its own.
      const subscriber = `conveyor:results-sub:${process.pid}`;
      const subscribersBefore =
        kind === 'redis' ? (await connectionNames()).filter((n) => n === subscriber).length : 0;
      const producer = scope.producer();
      const results: Array<AsyncResult<{ n: number }>> = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 500 }, async () => {
          while (next < WAITS) {
            const n = next++;
            results[n] = await producer.send<{ n: number }>('faults.record', [n, 0]);
          }
        }),
      );
      // All waits start together, before the worker runs anything: they are pending, then served.
      const started = Date.now();
      const values = Promise.all(results.map((r) => r.get({ timeoutMs: 60_000 })));
      await WorkerProcess.start(scope.workerEnv({ concurrency: 50, prefetchMultiplier: 4 }));
      if (kind === 'redis') {
        const names = await connectionNames();
        expect(names.filter((n) => n === subscriber)).toHaveLength(subscribersBefore + 1);
      }
      const resolved = await values;
      console.log(
        `[acceptance] ${kind}: ${WAITS} concurrent get() resolved in ${Date.now() - started} ms (worker start included)`,
      );
      expect(resolved.map((v) => v.n)).toEqual(results.map((_, n) => n));
      if (kind === 'redis') {
        const names = await connectionNames();
        expect(names.filter((n) => n === subscriber)).toHaveLength(subscribersBefore + 1);
      }
    }, 80_000);
  },
);
