import { randomUUID } from 'node:crypto';
import { Conveyor, Task, TaskService, type Worker } from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { serveMetrics, WorkerMetrics, type MetricsServer } from '@conveyor/core/metrics';
import { waitFor } from '@conveyor/core/testing';
import { TcpProxy } from '../support/tcp-proxy';
import { delayNamespace, removeDelayNamespace, removeQueues } from '../support/rabbitmq';
import { AMQP_URL } from '../support/services';

const queue = `metrics-amqp-${randomUUID()}`;
const namespace = delayNamespace();
const gate = { open: undefined as Promise<void> | undefined, release: () => undefined as void };

@TaskService({ name: 'held', queue })
class Held {
  @Task()
  async wait(n: number): Promise<number> {
    await gate.open;
    return n;
  }
}

/** A counter's value in Prometheus's text format. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('worker metrics on RabbitMQ', () => {
  let proxy: TcpProxy;
  let app: Conveyor;
  let worker: Worker;
  let metrics: WorkerMetrics;
  let server: MetricsServer;

  beforeAll(async () => {
    const target = new URL(AMQP_URL);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5672));
    await proxy.start();
  });

  afterAll(async () => {
    await metrics.close();
    await server.close();
    await worker.stop();
    await app.close();
    await proxy.stop();
    await removeQueues([queue]);
    await removeDelayNamespace(namespace);
  });

  it('counts the reconnects after a cut and the tasks RabbitMQ redelivered, on the served endpoint', async () => {
    gate.open = new Promise<void>((resolve) => (gate.release = resolve));
    app = new Conveyor({
      broker: new AmqpTransport({
        url: proxy.rewrite(AMQP_URL),
        delayNamespace: namespace,
        reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
        onError: () => undefined,
      }),
      tasks: [Held],
      defaultQueue: queue,
    });
    worker = app.worker({ handleSignals: false, queues: [queue], concurrency: 2 });
    metrics = new WorkerMetrics(worker);
    server = await serveMetrics(metrics.registry, { port: 0, host: '127.0.0.1' });
    await worker.start();
    await app.client(Held).wait.delay(1);
    await app.client(Held).wait.delay(2);
    await waitFor(() => worker.activeCount === 2, 'two tasks running', 10_000);

    // Both messages are unacked when the connections go: RabbitMQ gives them back, and the
    // worker gets them again, marked redelivered, once it has reconnected.
    proxy.cut();
    const scrape = async () => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
    const w = worker.hostname;
    await waitFor(
      async () =>
        value(
          await scrape(),
          `conveyor_task_redeliveries_total{worker="${w}",task="held.wait"}`,
        ) === 2,
      'two redeliveries counted',
      15_000,
    );
    gate.release();
    const text = await scrape();
    expect(
      value(text, `conveyor_broker_reconnects_total{worker="${w}",connection="consumer"}`),
    ).toBeGreaterThanOrEqual(1);
    expect(value(text, `conveyor_task_redeliveries_total{worker="${w}",task="held.wait"}`)).toBe(2);
    await waitFor(() => worker.activeCount === 0, 'the tasks to end', 10_000);
  });
});
