import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  DEFAULT_RESULT_STORE_BUCKETS_SECONDS,
  DEFAULT_TASK_RUNTIME_BUCKETS_SECONDS,
} from '../defaults';
import type { Worker } from '../worker/worker';
import type { WorkerEvents } from '../worker/worker-events';

/** Options of {@link WorkerMetrics}. */
export interface WorkerMetricsOptions {
  /**
   * Where the metrics are registered: pass the registry your app already serves, or serve this
   * one with `serveMetrics()`. Several workers may share one registry; each series carries the
   * worker's hostname in its `worker` label.
   * @defaultValue a new `Registry`
   */
  registry?: Registry;
  /**
   * Buckets of `conveyor_task_runtime_seconds`.
   * @defaultValue `DEFAULT_TASK_RUNTIME_BUCKETS_SECONDS` (5 ms to 10 min)
   */
  runtimeBuckets?: number[];
  /**
   * Buckets of `conveyor_result_store_seconds`.
   * @defaultValue `DEFAULT_RESULT_STORE_BUCKETS_SECONDS` (1 ms to 60 s)
   */
  resultStoreBuckets?: number[];
}

/** The metric objects of one registry, shared by every worker observed into it. */
interface MetricSet {
  tasks: Counter<'worker' | 'task' | 'state'>;
  runtime: Histogram<'worker' | 'task'>;
  retries: Counter<'worker' | 'task'>;
  redeliveries: Counter<'worker' | 'task'>;
  deadLetters: Counter<'worker' | 'queue' | 'reason'>;
  active: Gauge<'worker'>;
  prefetched: Gauge<'worker'>;
  resultStore: Histogram<'worker' | 'state'>;
  resultStoreFailures: Counter<'worker' | 'state'>;
  reconnects: Counter<'worker' | 'connection'>;
  eventsDropped: Counter<'worker'>;
  observed: Set<Worker>;
}

const metricSets = new WeakMap<Registry, MetricSet>();

/**
 * A worker's Prometheus metrics, kept from its events. The names and labels are stable (listed
 * in the README); every series has a `worker` label with the worker's hostname.
 *
 * @example
 * const metrics = new WorkerMetrics(worker);
 * const server = await serveMetrics(metrics.registry, { port: 9808 });
 */
export class WorkerMetrics {
  /** The registry holding the metrics. */
  readonly registry: Registry;
  private readonly metrics: MetricSet;
  private readonly detach: Array<() => void> = [];

  constructor(
    private readonly worker: Worker,
    options: WorkerMetricsOptions = {},
  ) {
    this.registry = options.registry ?? new Registry();
    this.metrics = metricSetOf(this.registry, options);
    this.metrics.observed.add(worker);
    const w = worker.hostname;
    const m = this.metrics;
    this.listen('task-received', (e) => {
      if (e.redelivered) m.redeliveries.inc({ worker: w, task: e.name });
    });
    this.listen('task-succeeded', (e) => this.finished(e.name, 'SUCCESS', e.runtimeMs));
    this.listen('task-failed', (e) => this.finished(e.name, 'FAILURE', e.runtimeMs));
    this.listen('task-revoked', (e) => this.finished(e.name, 'REVOKED', e.runtimeMs));
    this.listen('task-retried', (e) => m.retries.inc({ worker: w, task: e.name }));
    this.listen('message-dead-lettered', (e) =>
      m.deadLetters.inc({ worker: w, queue: e.queue, reason: e.kind }),
    );
    this.listen('result-stored', (e) => {
      if (e.stored) m.resultStore.observe({ worker: w, state: e.state }, e.durationMs / 1000);
      else m.resultStoreFailures.inc({ worker: w, state: e.state });
    });
    this.listen('broker-reconnected', (e) =>
      m.reconnects.inc({ worker: w, connection: e.connection }),
    );
  }

  /** Stops observing the worker and removes its series from the registry. */
  async close(): Promise<void> {
    for (const undo of this.detach.splice(0)) undo();
    this.metrics.observed.delete(this.worker);
    const hostname = this.worker.hostname;
    const { observed: _, ...metrics } = this.metrics;
    for (const metric of Object.values(metrics)) {
      const series = (await metric.get()).values;
      for (const { labels } of series) {
        if (labels.worker !== hostname) continue;
        // A histogram's bucket series carry `le`; the series set is named without it.
        const { le: _le, ...own } = labels as Record<string, string | number>;
        (metric as Counter<string>).remove(own);
      }
    }
  }

  private finished(task: string, state: string, runtimeMs: number | undefined): void {
    const worker = this.worker.hostname;
    this.metrics.tasks.inc({ worker, task, state });
    if (runtimeMs !== undefined) this.metrics.runtime.observe({ worker, task }, runtimeMs / 1000);
  }

  private listen<K extends keyof WorkerEvents>(
    event: K,
    listener: (...args: WorkerEvents[K]) => void,
  ): void {
    const emitter = this.worker as unknown as {
      on(event: K, listener: (...args: WorkerEvents[K]) => void): void;
      off(event: K, listener: (...args: WorkerEvents[K]) => void): void;
    };
    emitter.on(event, listener);
    this.detach.push(() => emitter.off(event, listener));
  }
}

function metricSetOf(registry: Registry, options: WorkerMetricsOptions): MetricSet {
  const existing = metricSets.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const observed = new Set<Worker>();
  const set: MetricSet = {
    observed,
    tasks: new Counter({
      name: 'conveyor_tasks_total',
      help: 'Tasks that reached a final state (SUCCESS, FAILURE, REVOKED), by task name',
      labelNames: ['worker', 'task', 'state'],
      registers,
    }),
    runtime: new Histogram({
      name: 'conveyor_task_runtime_seconds',
      help: 'How long tasks ran (succeeded or failed)',
      labelNames: ['worker', 'task'],
      buckets: options.runtimeBuckets ?? [...DEFAULT_TASK_RUNTIME_BUCKETS_SECONDS],
      registers,
    }),
    retries: new Counter({
      name: 'conveyor_task_retries_total',
      help: 'Retries scheduled, by task name',
      labelNames: ['worker', 'task'],
      registers,
    }),
    redeliveries: new Counter({
      name: 'conveyor_task_redeliveries_total',
      help: 'Task messages the broker delivered again after they went unacknowledged',
      labelNames: ['worker', 'task'],
      registers,
    }),
    deadLetters: new Counter({
      name: 'conveyor_dead_letters_total',
      help: 'Messages moved to <queue>.dead, by queue and reason (malformed, unregistered, unsupported, retries-exhausted, delivery-limit, unpublishable)',
      labelNames: ['worker', 'queue', 'reason'],
      registers,
    }),
    active: new Gauge({
      name: 'conveyor_tasks_active',
      help: 'Tasks running now',
      labelNames: ['worker'],
      registers,
      collect() {
        for (const worker of observed) this.set({ worker: worker.hostname }, worker.activeCount);
      },
    }),
    prefetched: new Gauge({
      name: 'conveyor_tasks_prefetched',
      help: 'Task messages received and waiting for a free slot or their rate limit',
      labelNames: ['worker'],
      registers,
      collect() {
        for (const worker of observed) {
          this.set({ worker: worker.hostname }, worker.prefetchedCount);
        }
      },
    }),
    resultStore: new Histogram({
      name: 'conveyor_result_store_seconds',
      help: 'How long storing a task state in the result backend took, retries included',
      labelNames: ['worker', 'state'],
      buckets: options.resultStoreBuckets ?? [...DEFAULT_RESULT_STORE_BUCKETS_SECONDS],
      registers,
    }),
    resultStoreFailures: new Counter({
      name: 'conveyor_result_store_failures_total',
      help: 'Task states the worker gave up storing (the message went back to its queue)',
      labelNames: ['worker', 'state'],
      registers,
    }),
    reconnects: new Counter({
      name: 'conveyor_broker_reconnects_total',
      help: 'Broker connections re-established after a loss, by connection',
      labelNames: ['worker', 'connection'],
      registers,
    }),
    eventsDropped: new Counter({
      name: 'conveyor_events_dropped_total',
      help: 'Celery events the worker dropped: the broker pushed back or the connection was down',
      labelNames: ['worker'],
      registers,
      // The worker's own count is the truth (events are fire-and-forget, counted where they are
      // dropped); it is copied at each scrape, so it rises as the worker's does.
      collect() {
        this.reset();
        for (const worker of observed) {
          this.inc({ worker: worker.hostname }, worker.eventCounts.dropped);
        }
      },
    }),
  };
  metricSets.set(registry, set);
  return set;
}
