import { ConfigError } from '../errors';
import type * as Metrics from '../metrics';
import type { MetricsServer } from '../metrics/metrics-server';
import type { Worker } from '../worker/worker';

/**
 * Serves `worker`'s Prometheus metrics on `port` (`conveyor worker --metrics-port`). The metrics
 * module, and prom-client with it, is loaded only here, so a worker without the option never
 * needs prom-client installed.
 */
export async function serveWorkerMetrics(worker: Worker, port: number): Promise<MetricsServer> {
  let metrics: typeof Metrics;
  try {
    metrics = await import('../metrics');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      throw new ConfigError('--metrics-port needs prom-client: npm install prom-client', {
        cause: error,
      });
    }
    throw error;
  }
  const observer = new metrics.WorkerMetrics(worker);
  return metrics.serveMetrics(observer.registry, { port });
}
