import { waitFor } from '@conveyor/core/testing';
import { DATABASE_URL, REDIS_URL } from '../support/services';
import {
  COLLECT_THROUGH_CUTS_MS,
  cutWhile,
  cutWorkerThroughCollection,
} from '../support/faults/chaos';
import {
  useFaultScopes,
  type FaultScope,
  type BackendKind,
  type Endpoints,
} from '../support/faults/fault-scope';
import { expectSound, Ledger, returnedItsNumber } from '../support/faults/ledger';
import { WorkerProcess } from '../support/faults/worker-process';

const TASKS = 1_000;

const services: Record<
  BackendKind,
  { name: string; url: string; endpoints(url: string): Endpoints }
> = {
  redis: { name: 'Redis', url: REDIS_URL, endpoints: (url) => ({ redisUrl: url }) },
  postgres: { name: 'PostgreSQL', url: DATABASE_URL, endpoints: (url) => ({ databaseUrl: url }) },
};

describe.each(['redis', 'postgres'] as BackendKind[])(
  'faults: result store (%s) connection cut',
  (kind) => {
    const service = services[kind];
    const openScope = useFaultScopes();

    const sendAll = async (
      ledger: Ledger,
      app: ReturnType<FaultScope['producer']>,
      sleepMs: number,
    ): Promise<void> => {
      await Promise.all(
        Array.from({ length: TASKS }, (_, n) =>
          ledger.track(app.send('faults.record', [n, sleepMs])),
        ),
      );
    };

    it(`while the worker stores results: nothing is acked before its result is stored, nothing lost (${service.name})`, async () => {
      const scope = openScope(`${kind}-store`, kind);
      const proxy = await scope.proxyTo(service.url);
      const ledger = new Ledger(
        `${service.name} cut while the worker stores results (${TASKS} tasks)`,
      );
      const producer = scope.producer();
      await sendAll(ledger, producer, 20);
      const worker = await WorkerProcess.start(
        scope.workerEnv({
          ...service.endpoints(proxy.rewrite(service.url)),
          concurrency: 10,
          prefetchMultiplier: 2,
        }),
      );
      await waitFor(async () => (await scope.runCount()) > 0, 'the first run');
      await cutWorkerThroughCollection(proxy, [100, 300], ledger, scope, worker);
    }, 90_000);

    it(`while producers wait: every pending get() resolves across the cuts (${service.name})`, async () => {
      const scope = openScope(`${kind}-wait`, kind);
      const proxy = await scope.proxyTo(service.url);
      const ledger = new Ledger(`${service.name} cut while producers wait (${TASKS} tasks)`);
      // The producer reaches the store through the proxy; the worker goes direct.
      const producer = scope.producer(
        {},
        scope.resultBackend(service.endpoints(proxy.rewrite(service.url))),
      );
      await sendAll(ledger, producer, 20);
      // Waits pending while the cuts come must resolve across them (or after them).
      const collecting = ledger.collect(COLLECT_THROUGH_CUTS_MS, returnedItsNumber);
      const worker = await WorkerProcess.start(
        scope.workerEnv({ concurrency: 10, prefetchMultiplier: 2 }),
      );
      const cuts = await cutWhile(proxy, [100, 300], collecting);
      expect(cuts).toBeGreaterThan(3);
      const counts = ledger.tally(await scope.runs());
      expectSound(counts, ledger.lostIds());
      expect(worker.alive).toBe(true);
    }, 90_000);
  },
);
